"""ctbench: reproduce and extend the experiments of closed-form continuous-time networks."""

__version__ = "0.1.0"
