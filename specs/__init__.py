"""The bundled network zoo (.arch files)."""
