"""NIR export and import of the float deploy graph (the attention is an extension carried in metadata)."""
from .convert import NIR_FILE, from_nir, read_nir, stem_subgraph, to_nir, write_nir

__all__ = ["to_nir", "from_nir", "write_nir", "read_nir", "stem_subgraph", "NIR_FILE"]
