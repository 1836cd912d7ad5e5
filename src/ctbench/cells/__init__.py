"""Recurrent cells: one file per cell, all with the step signature of ``cells.base.Cell``."""
