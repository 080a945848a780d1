"""Herald: a rules-engine driven notification router."""

__version__ = "0.1.0"
