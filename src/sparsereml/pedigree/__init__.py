"""Pedigrees and relationship matrices: the sparse inverse of A from a pedigree, user-given
matrices and their inverses, and genomic relationships (VanRaden)."""
from .pedigree import Pedigree, PedigreeWarning
from .relationship import Inverse, Relationship, as_relationship, grm

__all__ = ["Pedigree", "PedigreeWarning", "Inverse", "Relationship", "as_relationship", "grm"]
