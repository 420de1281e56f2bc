"""Helpers every layer may use: file I/O (standard library, numpy and torch only)."""
from .io import (atomic_save_npz, atomic_write_bytes, atomic_write_json, atomic_write_text,
                 check_writable, file_lock, read_json, read_scalars, sha256_file, umask_mode,
                 unwrap_state_dict)

__all__ = ['atomic_save_npz', 'atomic_write_bytes', 'atomic_write_json', 'atomic_write_text',
           'check_writable', 'file_lock', 'read_json', 'read_scalars', 'sha256_file',
           'umask_mode', 'unwrap_state_dict']
