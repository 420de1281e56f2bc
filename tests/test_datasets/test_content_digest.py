"""The data content digest of a VOC split (fq_det.datasets.content_digest): what it sees,
and its per-process cache, which must never return the digest of files that changed."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from fq_det.datasets import content_digest
from fq_det.datasets.content_digest import clear_digest_cache, voc_content_digest

SPLIT = 'VOC2007/ImageSets/Main/test.txt'


@pytest.fixture
def voc_copy(synthetic_voc_root, tmp_path) -> Path:
    root = tmp_path / 'voc'
    shutil.copytree(synthetic_voc_root, root)
    clear_digest_cache()
    yield root
    clear_digest_cache()


@pytest.fixture
def reads(monkeypatch) -> list:
    """One entry per digest that read the files (not served from the cache)."""
    calls = []
    real = content_digest._read_digest
    monkeypatch.setattr(content_digest, '_read_digest',
                        lambda text, paths: calls.append(len(paths)) or real(text, paths))
    return calls


def _settled(monkeypatch) -> None:
    """As if every file had been written long before: the cache may keep digests."""
    real = time.time_ns
    monkeypatch.setattr(content_digest, '_now_ns', lambda: real() + 10 * 10 ** 9)


def _first_image(root: Path) -> Path:
    first_id = (root / SPLIT).read_text().split()[0]
    return root / 'VOC2007' / 'JPEGImages' / f'{first_id}.jpg'


def test_unchanged_files_are_read_once_per_process(voc_copy, reads, monkeypatch):
    _settled(monkeypatch)
    digests = {voc_content_digest(str(voc_copy), SPLIT, 'VOC2007/') for _ in range(3)}
    assert len(digests) == 1 and len(reads) == 1
    clear_digest_cache()
    assert voc_content_digest(str(voc_copy), SPLIT, 'VOC2007/') in digests
    assert len(reads) == 2


@pytest.mark.parametrize('change', ['same size', 'removed', 'annotation', 'split file'])
def test_a_changed_file_is_read_again(change, voc_copy, reads, monkeypatch):
    _settled(monkeypatch)
    before = voc_content_digest(str(voc_copy), SPLIT, 'VOC2007/')
    time.sleep(0.05)  # past the file system's timestamp tick
    image = _first_image(voc_copy)
    if change == 'same size':
        data = bytearray(image.read_bytes())
        data[len(data) // 2] ^= 0xFF
        image.write_bytes(bytes(data))
    elif change == 'removed':
        image.unlink()
    elif change == 'annotation':
        xml = voc_copy / 'VOC2007' / 'Annotations' / f'{image.stem}.xml'
        xml.write_text(xml.read_text().replace('<difficult>0</difficult>',
                                               '<difficult>1</difficult>', 1) + ' ')
    else:
        split = voc_copy / SPLIT
        split.write_text('\n'.join(split.read_text().split()[1:]) + '\n')
    after = voc_content_digest(str(voc_copy), SPLIT, 'VOC2007/')
    assert after != before and len(reads) == 2
    clear_digest_cache()
    assert voc_content_digest(str(voc_copy), SPLIT, 'VOC2007/') == after  # as read afresh


def test_files_changed_just_now_are_never_cached(voc_copy, reads):
    """Within SETTLED_S of a file's last change, a rewrite could keep its timestamps (the
    file system's clock ticks coarsely): such files are read on every call."""
    image = _first_image(voc_copy)
    image.write_bytes(image.read_bytes())
    for _ in range(2):
        voc_content_digest(str(voc_copy), SPLIT, 'VOC2007/')
    assert len(reads) == 2


def test_a_studys_folder_data_key_reads_each_split_once(voc_copy, reads, monkeypatch):
    """``changed_settings`` asks for the data key per run and stage: the files are read
    once per split, and an edit is still seen."""
    from fq_det.studies import load_study
    from fq_det.studies.run_folder import _data_key
    _settled(monkeypatch)
    study = load_study(dict(task='classification', data=dict(type='folder', root=str(voc_copy)),
                            variants=dict(plain=dict(config='configs/classification/synthvoc/'
                                                     'resnet18_synthvoc-crops.py')),
                            reference='plain', seeds=[0]), str(voc_copy.parent / 'w'),
                       check_configs=False)
    keys = [_data_key(study) for _ in range(4)]
    assert all(k == keys[0] for k in keys) and len(reads) == 2  # trainval and test
    time.sleep(0.05)
    xml = next((voc_copy / 'VOC2007' / 'Annotations').iterdir())
    xml.write_text(xml.read_text() + ' ')
    assert _data_key(study)['content_sha256'] != keys[0]['content_sha256']
