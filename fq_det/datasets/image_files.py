"""Image files checked before a model is loaded: present, an image, and complete.

OpenCV reads a truncated JPEG without an error (the missing rows come out grey, with a
libjpeg warning on stderr), so a cut-off download would be evaluated as if it were the
picture. :func:`check_image_file` checks the file's structure (a PNG's checksums and end
chunk) and decodes every pixel with Pillow, which refuses a truncated file, and then
decodes it with OpenCV, the reader the detectors' pipelines use.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ['ImageFileError', 'check_image_file', 'check_image_files', 'ends_complete']

# How a complete file ends: a JPEG with its end-of-image marker (zero padding after it
# allowed), a PNG with its IEND chunk.
_ENDINGS = {'JPEG': b'\xff\xd9', 'PNG': b'IEND\xaeB`\x82'}
_TAIL = 64  # bytes read from the end


class ImageFileError(ValueError):
    """A file that is not a complete image (empty, another format, truncated, corrupt)."""


def check_image_file(path: str | os.PathLike) -> None:
    """Raise ``FileNotFoundError`` / :class:`ImageFileError` naming ``path`` unless it is a
    complete image file that Pillow and OpenCV both decode."""
    import cv2
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'image not found: {path}')
    if path.stat().st_size == 0:
        raise ImageFileError(f'{path} is empty (0 bytes), not an image')
    try:
        with Image.open(path) as img:
            img.verify()  # the container: chunk checksums, a PNG's end chunk
        with Image.open(path) as img:
            img.load()  # every pixel: a truncated JPEG raises here
    except UnidentifiedImageError:
        raise ImageFileError(f'{path} is not an image (no image format recognised; JPEG, '
                             'PNG, BMP, TIFF or WebP expected)') from None
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's errors for broken data
        raise ImageFileError(f'{path} is truncated or corrupt ({err})') from None
    if cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
        raise ImageFileError(f'{path} cannot be decoded by OpenCV, which the detectors read '
                             'images with (corrupt, or a format it lacks?); save it as JPEG or PNG')


def ends_complete(path: str | os.PathLike, image_format: str | None) -> bool:
    """Whether a JPEG or PNG file ends as a complete one does (reads its last bytes only;
    other formats: True). False also for a JPEG with data after its end marker, which some
    cameras append: :func:`check_image_file` then decides."""
    ending = _ENDINGS.get(str(image_format).upper())
    if ending is None:
        return True
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - _TAIL))
        return f.read().rstrip(b'\0').endswith(ending)


def check_image_files(paths: Iterable[str | os.PathLike]) -> None:
    """:func:`check_image_file` for every path, in order (the first bad one is named)."""
    for path in paths:
        check_image_file(path)
