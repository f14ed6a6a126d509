"""Pedigrees and relationship matrices: the sparse inverse of A from a pedigree, user-given
matrices and their inverses, genomic relationships (VanRaden) and dominance relationships."""
from .dominance import dominance, dominance_matrix
from .pedigree import Pedigree, PedigreeWarning
from .relationship import Inverse, Relationship, as_relationship, grm

__all__ = ["Pedigree", "PedigreeWarning", "Inverse", "Relationship", "as_relationship", "grm", "dominance",
           "dominance_matrix"]
