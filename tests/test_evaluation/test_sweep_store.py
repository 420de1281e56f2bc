"""The sweep's store: resume key, file lock, atomic files, named errors; two writers at once."""
from __future__ import annotations

import json
import multiprocessing

import pytest

from fq_det.evaluation.sweep_store import (StaleResultsError, SweepFileError, SweepStore,
                                           atomic_write_text, describe_changes, record_id)

KEY = dict(task='detection', checkpoint=dict(path='/m.pth', size=3, sha256='ab'),
           config_sha256='c1', data=[dict(data_root='/d', ann_file='t.txt', ann_sha256='x')])


def _writer(out_dir: str, tag: str, n: int) -> None:
    store = SweepStore(out_dir, KEY).open()
    results = f'{out_dir}/results.json'
    for i in range(n):
        store.add(record_id(tag, 1 + i % 5, i), {'m': float(i)},
                  lambda records: atomic_write_text(results, json.dumps(sorted(records))))


def test_two_processes_writing_one_store_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context('fork')
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), tag, 40)) for tag in ('a', 'b')]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = json.loads((tmp_path / 'partial.json').read_text())['records']
    assert len(records) == 80 and {r.split('/')[0] for r in records} == {'a', 'b'}
    assert json.loads((tmp_path / 'results.json').read_text()) == sorted(records)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]  # no temp files left


def test_key_mismatch_names_what_changed(tmp_path):
    SweepStore(str(tmp_path), KEY).open().add('clean/0/0', {'m': 1.0})
    new = json.loads(json.dumps(KEY))
    new['checkpoint'].update(sha256='cd')
    new['data'][0]['data_root'] = '/e'
    with pytest.raises(StaleResultsError) as err:
        SweepStore(str(tmp_path), new).open()
    msg = str(err.value)
    assert 'checkpoint content' in msg and 'data root: /d -> /e' in msg and '--overwrite' in msg
    assert 'config after' not in msg and 'checkpoint path' not in msg
    # overwrite: the old records are gone, the new key is on disk.
    store = SweepStore(str(tmp_path), new, overwrite=True).open()
    assert store.records == {}
    assert json.loads((tmp_path / 'partial.json').read_text())['resume_key'] == new
    assert describe_changes(KEY, dict(KEY, config_sha256='c2')) == \
        ['config after overrides (--cfg-options and the like): sha256 c1 -> c2']


def test_invalid_files_are_named(tmp_path):
    (tmp_path / 'partial.json').write_text('{"resume_key": {"task": "dete')
    with pytest.raises(SweepFileError, match=r'partial\.json is not valid JSON'):
        SweepStore(str(tmp_path), KEY).open()
    (tmp_path / 'partial.json').write_text('[1, 2]')
    with pytest.raises(SweepFileError, match=r'partial\.json holds a JSON list'):
        SweepStore(str(tmp_path), KEY).open()
    (tmp_path / 'partial.json').write_text('{"records": {}}')
    with pytest.raises(SweepFileError, match=r'lacks "resume_key"'):
        SweepStore(str(tmp_path), KEY).open()


def test_data_regenerated_in_place_changes_the_key(tmp_path):
    """Same ids, byte-identical split file, other images and annotations: the resume key
    (and a study's folder data key) sees the change and names it."""
    from mmengine.config import Config

    from fq_det.datasets.synthetic_voc import make_synthetic_voc
    from fq_det.evaluation.sweep_store import data_identity
    root = tmp_path / 'data'
    make_synthetic_voc(root, num_train=3, num_test=3, seed=0, image_size=(64, 48))
    cfg = Config(dict(test_dataloader=dict(dataset=dict(
        type='VOCDataset', data_root=str(root) + '/', ann_file='VOC2007/ImageSets/Main/test.txt',
        data_prefix=dict(sub_data_root='VOC2007/')))))
    before = data_identity(cfg)
    assert before[0]['content_sha256'] and data_identity(cfg) == before  # stable
    split = (root / 'VOC2007/ImageSets/Main/test.txt').read_bytes()
    import shutil
    shutil.rmtree(root)
    make_synthetic_voc(root, num_train=3, num_test=3, seed=5, image_size=(64, 48))
    assert (root / 'VOC2007/ImageSets/Main/test.txt').read_bytes() == split
    after = data_identity(cfg)
    assert after[0]['ann_sha256'] == before[0]['ann_sha256']
    assert after[0]['content_sha256'] != before[0]['content_sha256']
    key = dict(KEY, data=before)
    SweepStore(str(tmp_path / 'out'), key).open().add('clean/0/0', {'m': 1.0})
    with pytest.raises(StaleResultsError, match='test data content'):
        SweepStore(str(tmp_path / 'out'), dict(KEY, data=after)).open()
    # one test image rewritten: changes too
    image = root / 'VOC2007/JPEGImages' / f'{split.decode().split()[0]}.jpg'
    image.write_bytes(image.read_bytes() + b'\0')
    assert data_identity(cfg)[0]['content_sha256'] != after[0]['content_sha256']


def test_sweep_files_follow_the_umask(tmp_path):
    """Written files get the mode a plain write would (mkstemp alone gives 0600, which
    shuts the group out of a shared cluster folder)."""
    import os

    import numpy as np

    from fq_det.utils.io import atomic_save_npz
    old = os.umask(0o002)
    try:
        atomic_write_text(str(tmp_path / 'a.json'), '{}')
        atomic_save_npz(str(tmp_path / 'b.npz'), dict(x=np.zeros(2)))
    finally:
        os.umask(old)
    for name in ('a.json', 'b.npz'):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o664


def test_a_changed_entry_without_its_own_words_is_named_with_both_values():
    """Every changed entry of the resume key gets a line (fq_det.utils.keys.changed_keys):
    the described ones in their words, any other (an export's identity) with both values."""
    new = dict(KEY, corrupted_root=dict(path='/c', settings_sha256='s'))
    assert describe_changes(KEY, new) == ['corrupted_root: null -> {"path": "/c", '
                                          '"settings_sha256": "s"}']
    both = dict(new, task='classification')
    assert describe_changes(KEY, both)[0] == 'task: detection -> classification'
