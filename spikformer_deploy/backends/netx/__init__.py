"""lava-dl netx HDF5 of the residual-free part of the network (the SPS stem up to its first residual sum)."""
from .stem import NETX_FILE, run_netx_stem, stem_layers, write_netx_stem

__all__ = ["write_netx_stem", "run_netx_stem", "stem_layers", "NETX_FILE"]
