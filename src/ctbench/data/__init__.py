"""Data modules (one per dataset) and the shared download/verify/cache code."""
