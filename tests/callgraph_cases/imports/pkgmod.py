from .impl import Thing, helper

__all__ = ["Thing", "helper"]
