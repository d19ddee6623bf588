"""Stand-in for llvmlite (bench/device/nonumba/README.md): only ``binding.load_library_permanently``."""
