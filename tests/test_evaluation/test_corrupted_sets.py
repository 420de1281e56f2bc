"""Exported corrupted sets (tools/misc/export_corrupted.py) and the sweep reading them
(tools/test_robustness.py --corrupted-root): the same pixels and the same numbers as the
sweep that distorts on the fly."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from mmengine.config import Config

import fq_det  # noqa: F401
from fq_det.evaluation import load_per_image
from fq_det.evaluation.corrupted_sets import (MANIFEST, PAIR_FILE, StaleExportError,
                                              export_corrupted, open_corrupted_set, pair_root)
from fq_det.evaluation.robustness import run_sweep
from helpers import load_script

PAIRS = dict(distortions=['c:impulse_noise', 'targeted_occlusion'], severities=[2])


def _on_the_fly_images(cfg: Config, distortion: str, severity: int, seed: int) -> dict:
    """``{file name: image}`` as the sweep's pipeline holds them right after Distort."""
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from fq_det.datasets.distortion_route import distortion_block
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    dataset_cfg = dict(cfg.test_dataloader.dataset)
    pipeline = Compose(distortion_block(dataset_cfg['pipeline'], distortion, severity, seed))
    ds = DATASETS.build(dict(dataset_cfg, pipeline=[]))
    out = {}
    for i in range(len(ds)):
        results = pipeline(ds.get_data_info(i))
        out[os.path.basename(results['img_path'])] = results['img']
    return out


@pytest.fixture(scope='module')
def exported(tiny_detector, tmp_path_factory):
    """The tiny test set exported through the CLI with two workers."""
    cfg_path, _ = tiny_detector
    out = tmp_path_factory.mktemp('exported')
    tool = load_script('tools/misc/export_corrupted.py')
    manifest = tool.main([str(cfg_path), '--out', str(out), '--distortions', *PAIRS['distortions'],
                          '--severities', '2', '--workers', '2'])
    return out, manifest


def test_exported_images_are_the_sweeps_pixels(exported, tiny_detector):
    out, manifest = exported
    cfg = Config.fromfile(str(tiny_detector.config))
    assert set(manifest['pairs']) == {'c:impulse_noise/2', 'targeted_occlusion/2'}
    assert manifest['settings']['seed'] == 0 and manifest['settings']['image_format'] == 'png'
    for distortion in PAIRS['distortions']:
        root = pair_root(str(out), distortion, 2)
        record = json.loads(open(os.path.join(root, PAIR_FILE)).read())
        expected = _on_the_fly_images(cfg, distortion, 2, seed=0)
        assert record['num_images'] == len(expected) == 4
        for image in record['images']:
            path = os.path.join(root, image['file'])
            assert path.endswith('.jpg') and open(path, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
            got = cv2.imread(path, cv2.IMREAD_COLOR)
            clean = cv2.imread(os.path.join(str(cfg.data_root), image['file']), cv2.IMREAD_COLOR)
            assert np.array_equal(got, expected[os.path.basename(path)])
            assert not np.array_equal(got, clean)  # the pair is really distorted
            assert len(image['seed']) == 32 and image['key'].startswith(image['img_id'] + '|')
        # the annotations are copies, so the pair's folder is a data root of its own
        ann = os.path.join(root, 'VOC2007', 'ImageSets', 'Main', 'test.txt')
        assert os.path.isfile(ann) and not os.path.islink(ann)


def test_corrupted_root_gives_the_same_numbers(exported, tiny_detector, tmp_path):
    """End to end: the sweep reading the export equals the sweep distorting on the fly,
    metric for metric and per-image record for per-image record."""
    out, _ = exported
    cfg_path, ckpt = tiny_detector
    cfg = Config.fromfile(str(cfg_path))
    cfg.model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=100)
    fly = run_sweep('detection', cfg, str(ckpt), str(tmp_path / 'fly'), save_per_image=True,
                               **PAIRS)
    tool = load_script('tools/test_robustness.py')
    read = tool.main([str(cfg_path), str(ckpt), '--distortions', *PAIRS['distortions'],
                      '--severities', '2', '--out-dir', str(tmp_path / 'read'),
                      '--save-per-image', '--corrupted-root', str(out), '--cfg-options',
                      'model.test_cfg.rcnn.score_thr=0.0', 'model.test_cfg.rcnn.max_per_img=100'])
    assert read['distorted'] == fly['distorted'] and read['clean'] == fly['clean']
    assert read['distorted']['c:impulse_noise']['2']['pascal_voc/mAP'] != \
        read['clean']['pascal_voc/mAP']  # the distortion changes the detections
    assert read['resume_key']['corrupted_root']['path'] == str(out)
    for name in ('clean', 'c:impulse_noise_s2', 'targeted_occlusion_s2'):
        a = load_per_image(str(tmp_path / 'fly' / 'per_image' / f'{name}.npz'))
        b = load_per_image(str(tmp_path / 'read' / 'per_image' / f'{name}.npz'))
        assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a), name


def test_export_resumes_and_refuses_stale_folders(tiny_detector, tmp_path, capsys):
    cfg = Config.fromfile(str(tiny_detector.config))
    out = tmp_path / 'exp'
    export_corrupted(cfg, str(out), ['c:fog'], [1, 3])
    image = out / 'c-fog' / '3' / 'VOC2007' / 'JPEGImages' / '000009.jpg'
    stamp = image.stat().st_mtime_ns
    capsys.readouterr()
    # Finished pairs are skipped; an unfinished one (no pair.json) is done again.
    (out / 'c-fog' / '1' / PAIR_FILE).unlink()
    export_corrupted(cfg, str(out), ['c:fog'], [1, 3])
    printed = capsys.readouterr().out
    assert 'c:fog/3: in ' in printed and 'skipped' in printed and 'exporting 1 pair(s)' in printed
    assert image.stat().st_mtime_ns == stamp and (out / 'c-fog' / '1' / PAIR_FILE).is_file()
    # Other settings: refused, naming what changed.
    with pytest.raises(StaleExportError, match=r'seed: 0 -> 1'):
        export_corrupted(cfg, str(out), ['c:fog'], [1], seed=1)
    with pytest.raises(StaleExportError, match=r"annotation mode: 'copy' -> 'link'"):
        export_corrupted(cfg, str(out), ['c:fog'], [1], annotations='link')
    # A pair made by code that gives other pixels (its fingerprint differs) is named.
    pair = out / 'c-fog' / '3' / PAIR_FILE
    record = json.loads(pair.read_text())
    pair.write_text(json.dumps(dict(record, fingerprint='0' * 64)))
    with pytest.raises(StaleExportError, match=r'c-fog/3/ was exported by a version of .c:fog.'):
        export_corrupted(cfg, str(out), ['c:fog'], [3])
    with pytest.raises(StaleExportError, match='gives other pixels'):
        open_corrupted_set(str(out), cfg, ['c:fog'], [3], seed=0)
    pair.write_text(json.dumps(record))
    # Reading: another seed, a pair not exported, no manifest.
    with pytest.raises(StaleExportError, match='exported with seed 0.*--seed 0'):
        open_corrupted_set(str(out), cfg, ['c:fog'], [3], seed=2)
    with pytest.raises(ValueError, match=r'lacks the finished pair\(s\) c:fog/5.*holds c:fog/1'):
        open_corrupted_set(str(out), cfg, ['c:fog'], [3, 5], seed=0)
    with pytest.raises(FileNotFoundError, match='no manifest.json'):
        open_corrupted_set(str(tmp_path), cfg, ['c:fog'], [3], seed=0)
    # Start afresh: the pairs the manifest lists are deleted first.
    export_corrupted(cfg, str(out), ['c:fog'], [1], seed=1, overwrite=True)
    manifest = json.loads((out / MANIFEST).read_text())
    assert list(manifest['pairs']) == ['c:fog/1'] and not (out / 'c-fog' / '3').exists()


def test_export_of_other_data_is_refused_when_read(tiny_detector, tmp_path, synthetic_voc_root):
    import shutil
    cfg = Config.fromfile(str(tiny_detector.config))
    copy_root = tmp_path / 'copy'
    shutil.copytree(synthetic_voc_root, copy_root)
    export_corrupted(cfg, str(tmp_path / 'exp'), ['c:contrast'], [2])
    from fq_det.datasets.data_check import set_data_root
    set_data_root(cfg, str(copy_root))
    with pytest.raises(StaleExportError, match='source data'):
        open_corrupted_set(str(tmp_path / 'exp'), cfg, ['c:contrast'], [2], seed=0)


def test_export_tool_rejects_bad_input(tiny_detector, tmp_path):
    tool = load_script('tools/misc/export_corrupted.py')
    base = [str(tiny_detector.config), '--out', str(tmp_path / 'exp')]
    with pytest.raises(SystemExit, match=r'valid choices: c:gaussian_noise.*; or a preset: all'):
        tool.main(base + ['--distortions', 'c:fogg'])
    with pytest.raises(SystemExit, match='valid choices: 1, 2, 3, 4, 5'):
        tool.main(base + ['--severities', '0'])
    with pytest.raises(SystemExit, match='--seed must be >= 0'):
        tool.main(base + ['--seed', '-1'])
