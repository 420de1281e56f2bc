"""The robustness sweep and tools/test_robustness.py, end to end on a tiny detector."""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fq_det  # noqa: F401
from fq_det.evaluation import robustness
from fq_det.evaluation.robustness import format_results_table, insert_distort, run_sweep
from fq_det.evaluation.summary import summarize

class _Calls(list):
    control = None


@pytest.fixture
def evaluations(monkeypatch):
    """The (distortion, severity) pairs evaluated; set ``interrupt_after`` to stop a sweep."""
    calls = _Calls()
    real = robustness._evaluate

    def counting(runner, cfg, distortion, severity, seed, *args):
        if len(calls) == counting.interrupt_after:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-sweep
        calls.append((distortion, severity))
        return real(runner, cfg, distortion, severity, seed, *args)

    counting.interrupt_after = None
    monkeypatch.setattr(robustness, '_evaluate', counting)
    calls.control = counting
    return calls


def test_insert_distort_positions():
    voc = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(1, 1)),
           dict(type='LoadAnnotations', with_bbox=True, with_mask=True), dict(type='PackDetInputs')]
    out = insert_distort(voc, 'jpeg', 2, seed=3)
    assert [t['type'] for t in out] == ['LoadImageFromFile', 'mmdet.Distort', 'Resize',
                                        'LoadAnnotations', 'PackDetInputs']
    assert out[1] == dict(type='mmdet.Distort', distortion='jpeg', severity=2, seed=3)
    assert len(voc) == 4  # the input is not modified
    # Boxes needed, annotations loaded after Resize: a box-only copy goes before Distort.
    out = insert_distort(voc, 'targeted_occlusion', 1)
    assert [t['type'] for t in out][:3] == ['LoadImageFromFile', 'LoadAnnotations',
                                            'mmdet.Distort']
    assert out[1]['with_bbox'] and not out[1]['with_mask']
    # Annotations already loaded before any resize: Distort simply follows them.
    train = [voc[0], voc[2], voc[1], voc[3]]
    out = insert_distort(train, 'targeted_occlusion', 1)
    assert [t['type'] for t in out] == ['LoadImageFromFile', 'LoadAnnotations', 'mmdet.Distort',
                                        'Resize', 'PackDetInputs']
    with pytest.raises(ValueError, match='no LoadImage'):
        insert_distort(voc[1:], 'jpeg', 1)
    with pytest.raises(ValueError, match='valid choices'):
        insert_distort(voc, 'blur', 1)


def test_summary_and_table():
    results = dict(config='c.py', checkpoint='x.pth', metric_key='pascal_voc/mAP',
                   clean={'pascal_voc/mAP': 0.8},
                   distorted={'jpeg': {'1': {'pascal_voc/mAP': 0.6}, '2': {'pascal_voc/mAP': 0.4}},
                              'ngrn': {'1': {'pascal_voc/mAP': 0.2}, '2': {'pascal_voc/mAP': 0.1}}})
    s = summarize(results)
    assert s['P'] == 0.8 and math.isclose(s['mPC'], 0.325) and math.isclose(s['rPC'], 0.40625)
    assert s['per_distortion'] == pytest.approx({'jpeg': 0.5, 'ngrn': 0.15})
    table = format_results_table(results)
    assert '| jpeg | 0.600 | 0.400 | 0.500 |' in table
    assert '| P (clean) | 0.800 |' in table and '| rPC = mPC / P | 40.6 % |' in table
    assert math.isnan(summarize(dict(results, clean={'pascal_voc/mAP': 0.0}))['rPC'])


def test_sweep_end_to_end_interrupted_resumed(tiny_detector, tmp_path, repo_root, evaluations, capsys):
    cfg_path, ckpt = tiny_detector
    out_dir = tmp_path / 'robustness'
    kwargs = dict(distortions=['jpeg', 'targeted_occlusion'], severities=[1, 5])

    # Interrupted after three of the five pairs: those three are on disk.
    evaluations.control.interrupt_after = 3
    with pytest.raises(KeyboardInterrupt):
        run_sweep('detection', str(cfg_path), str(ckpt), str(out_dir), **kwargs)
    assert evaluations == [(None, 0), ('jpeg', 1), ('jpeg', 5)]
    partial = json.loads((out_dir / 'results.json').read_text())
    assert 'pascal_voc/mAP' in partial['clean'] and 'pascal_voc/AP50' in partial['clean']
    assert partial['distorted'] == {'jpeg': {'1': partial['distorted']['jpeg']['1'],
                                             '5': partial['distorted']['jpeg']['5']}}
    printed = capsys.readouterr().out
    assert 'pair 1/5: clean' in printed and 'pair 3/5: jpeg 5' in printed

    # The rerun evaluates only the two missing pairs.
    evaluations.clear()
    evaluations.control.interrupt_after = None
    res = run_sweep('detection', str(cfg_path), str(ckpt), str(out_dir), **kwargs)
    assert evaluations == [('targeted_occlusion', 1), ('targeted_occlusion', 5)]
    printed = capsys.readouterr().out
    assert 'pair 3/5: jpeg 5 (in results.json, skipped)' in printed
    assert 'pair 5/5: targeted_occlusion 5' in printed

    on_disk = json.loads((out_dir / 'results.json').read_text())
    assert on_disk == json.loads(json.dumps(res))
    assert set(res) == {'config', 'checkpoint', 'metric_key', 'seeds', 'resume_key', 'clean',
                        'distorted', 'distorted_std', 'per_seed', 'summary'}
    assert res['seeds'] == [0] and res['resume_key']['task'] == 'detection'
    assert res['resume_key']['checkpoint']['size'] == ckpt.stat().st_size
    assert res['metric_key'] == 'pascal_voc/mAP' and res['clean'] == partial['clean']
    assert {d: set(v) for d, v in res['distorted'].items()} == \
        {'jpeg': {'1', '5'}, 'targeted_occlusion': {'1', '5'}}
    assert set(res['summary']) == {'P', 'mPC', 'rPC', 'per_distortion'}
    values = [m['pascal_voc/mAP'] for v in res['distorted'].values() for m in v.values()]
    assert res['summary']['mPC'] == pytest.approx(sum(values) / 4)
    md = (out_dir / 'results.md').read_text()
    assert '| jpeg |' in md and '| targeted_occlusion |' in md and 'rPC' in md
    assert md in printed

    # Everything done: nothing is built or evaluated, the table is printed again.
    evaluations.clear()
    again = run_sweep('detection', str(cfg_path), str(ckpt), str(out_dir), **kwargs)
    assert evaluations == [] and again == res

    # Results of another checkpoint are never mixed in.
    other = tmp_path / 'other.pth'
    other.write_bytes(ckpt.read_bytes())
    with pytest.raises(ValueError, match='not .*another out_dir'):
        run_sweep('detection', str(cfg_path), str(other), str(out_dir))

    # The CLI over the same out-dir: its flags reach the sweep (all pairs already done;
    # the number of dataloader workers does not change a result, so it is no new key).
    tool = _load_tool(repo_root)
    res_cli = tool.main([str(cfg_path), str(ckpt), '--distortions', 'jpeg', 'targeted_occlusion',
                         '--severities', '5', '--out-dir', str(out_dir),
                         '--cfg-options', 'test_dataloader.num_workers=0'])
    assert evaluations == [] and res_cli['distorted'] == res['distorted']
    # A setting that can change a result (the test batch size pads images differently) is.
    with pytest.raises(SystemExit, match='config after overrides.*\n.*--overwrite'):
        tool.main([str(cfg_path), str(ckpt), '--distortions', 'jpeg', '--severities', '5',
                   '--out-dir', str(out_dir), '--cfg-options', 'test_dataloader.batch_size=4'])
    assert evaluations == []


def _load_tool(repo_root):
    spec = importlib.util.spec_from_file_location(
        'test_robustness_cli', repo_root / 'tools' / 'test_robustness.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_rejects_unknown_distortion_and_severity(tiny_detector, repo_root):
    tool = _load_tool(repo_root)
    cfg_path, ckpt = tiny_detector
    with pytest.raises(SystemExit, match='valid choices: motion_blur, jpeg'):
        tool.main([str(cfg_path), str(ckpt), '--distortions', 'jpeg', 'fogg'])
    with pytest.raises(SystemExit, match='valid choices: 1, 2, 3, 4, 5'):
        tool.main([str(cfg_path), str(ckpt), '--severities', '7'])
    with pytest.raises(SystemExit, match='checkpoint not found'):
        tool.main([str(cfg_path), str(ckpt) + '.missing'])


# ---- stale results (a sweep re-run with something changed) ---------------------------
@pytest.fixture
def finished_sweep(tiny_detector, tmp_path, evaluations):
    """A copy of the tiny checkpoint and an out-dir holding its clean + jpeg 1 results."""
    import shutil
    cfg_path, ckpt = tiny_detector
    own_ckpt = tmp_path / 'model.pth'
    shutil.copy(ckpt, own_ckpt)
    out_dir = tmp_path / 'rob'
    first = run_sweep('detection', str(cfg_path), str(own_ckpt), str(out_dir),
                                 distortions=['jpeg'], severities=[1])
    assert evaluations == [(None, 0), ('jpeg', 1)]
    evaluations.clear()
    return cfg_path, own_ckpt, out_dir, first


def test_rerun_with_other_cfg_options_is_refused(finished_sweep, evaluations):
    from mmengine.config import Config
    cfg_path, ckpt, out_dir, first = finished_sweep
    cfg = Config.fromfile(str(cfg_path))
    cfg.merge_from_dict({'model.test_cfg.rcnn.score_thr': 0.3})
    with pytest.raises(ValueError, match=r'config after overrides') as err:
        run_sweep('detection', cfg, str(ckpt), str(out_dir), distortions=['jpeg'], severities=[1])
    assert '--overwrite' in str(err.value) and evaluations == []
    # --overwrite starts afresh: every pair is evaluated again, under the new key.
    res = run_sweep('detection', cfg, str(ckpt), str(out_dir), distortions=['jpeg'], severities=[1],
                               overwrite=True)
    assert evaluations == [(None, 0), ('jpeg', 1)]
    assert res['resume_key']['config_sha256'] != first['resume_key']['config_sha256']


def test_rerun_on_other_data_root_is_refused(finished_sweep, synthetic_voc_root, tmp_path,
                                             evaluations, repo_root):
    import shutil
    cfg_path, ckpt, out_dir, _ = finished_sweep
    other = tmp_path / 'other_data'
    shutil.copytree(synthetic_voc_root, other)
    tool = _load_tool(repo_root)
    with pytest.raises(SystemExit, match=r'data root: .*synthvoc.* -> .*other_data') as err:
        tool.main([str(cfg_path), str(ckpt), '--distortions', 'jpeg', '--severities', '1',
                   '--out-dir', str(out_dir), '--data-root', str(other)])
    assert '--overwrite' in str(err.value) and evaluations == []
    tool.main([str(cfg_path), str(ckpt), '--distortions', 'jpeg', '--severities', '1',
               '--out-dir', str(out_dir), '--data-root', str(other), '--overwrite'])
    assert evaluations == [(None, 0), ('jpeg', 1)]


def test_rerun_after_the_checkpoint_was_overwritten_is_refused(finished_sweep, evaluations):
    import torch
    cfg_path, ckpt, out_dir, _ = finished_sweep
    state = torch.load(str(ckpt), map_location='cpu', weights_only=True)
    for v in state['state_dict'].values():
        if v.is_floating_point():
            v.add_(0.01)  # as if a new training had written the file
    torch.save(state, str(ckpt))
    with pytest.raises(ValueError, match=r'checkpoint content: .*model\.pth'):
        run_sweep('detection', str(cfg_path), str(ckpt), str(out_dir), distortions=['jpeg'],
                             severities=[1])
    assert evaluations == []


def test_rerun_with_another_seed_never_reports_the_old_seed(finished_sweep, evaluations):
    cfg_path, ckpt, out_dir, first = finished_sweep
    res = run_sweep('detection', str(cfg_path), str(ckpt), str(out_dir), distortions=['jpeg'],
                               severities=[1], seeds=(1, ))
    # The clean pair does not depend on the seed; the distorted one is evaluated anew.
    assert evaluations == [('jpeg', 1)]
    assert res['seeds'] == [1] and res['clean'] == first['clean']
    on_disk = json.loads((out_dir / 'results.json').read_text())
    assert on_disk['seeds'] == [1]
    stored = json.loads((out_dir / 'partial.json').read_text())['records']
    assert set(stored) == {'clean/0/0', 'jpeg/1/0', 'jpeg/1/1'}
    assert on_disk['distorted']['jpeg']['1'] == stored['jpeg/1/1']


def test_truncated_files_and_unwritable_out_dir_are_named(finished_sweep, tmp_path, evaluations,
                                                          repo_root):
    cfg_path, ckpt, out_dir, _ = finished_sweep
    tool = _load_tool(repo_root)
    args = [str(cfg_path), str(ckpt), '--distortions', 'jpeg', '--severities', '1']
    partial = out_dir / 'partial.json'
    partial.write_text(partial.read_text()[:40])
    with pytest.raises(SystemExit, match=r'partial\.json is not valid JSON'):
        tool.main(args + ['--out-dir', str(out_dir)])
    # A results.json without the partial.json that says what it belongs to is not reused.
    partial.unlink()
    with pytest.raises(SystemExit, match=r'results\.json has no partial\.json'):
        tool.main(args + ['--out-dir', str(out_dir)])
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    with pytest.raises(SystemExit, match=r'out-dir .*a_file/rob: .*a_file is a file, not a folder'):
        tool.main(args + ['--out-dir', str(blocker / 'rob')])
    assert evaluations == []


def test_per_image_records_give_the_sweeps_map(tiny_detector, tmp_path, evaluations):
    import numpy as np
    from fq_det.evaluation import load_per_image, voc_map_of_subset
    from mmengine.config import Config
    cfg_path, ckpt = tiny_detector
    cfg = Config.fromfile(str(cfg_path))
    # Score threshold 0: the random detector keeps its boxes, a few hit by chance (mAP > 0).
    cfg.model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=100)
    out_dir = tmp_path / 'rob'
    res = run_sweep('detection', cfg, str(ckpt), str(out_dir), distortions=['ngrn'],
                               severities=[5], save_per_image=True)
    assert res['clean']['pascal_voc/mAP'] > 0
    for name, metrics in (('clean', res['clean']), ('ngrn_s5', res['distorted']['ngrn']['5'])):
        rec = load_per_image(str(out_dir / 'per_image' / f'{name}.npz'))
        n = len(rec['img_ids'])
        assert n == 4 and len(rec['pred_offsets']) == len(rec['gt_offsets']) == n + 1
        assert rec['gt_offsets'][-1] == len(rec['gt_bboxes']) > 0
        assert voc_map_of_subset(rec, np.arange(n)) == pytest.approx(
            metrics['pascal_voc/mAP'], abs=1e-6)  # VOCMetric: float32
    # A sweep resumed with --save-per-image re-evaluates only pairs whose records are missing.
    (out_dir / 'per_image' / 'ngrn_s5.npz').unlink()
    evaluations.clear()
    run_sweep('detection', cfg, str(ckpt), str(out_dir), distortions=['ngrn'], severities=[5],
                         save_per_image=True)
    assert evaluations == [('ngrn', 5)]


# ---- concurrent use ----------------------------------------------------------------
TWO_SWEEPS = r"""
import sys
sys.path.insert(0, {repo!r})
sys.argv = ['test_robustness.py', {cfg!r}, {ckpt!r}, '--severities', '1', '--out-dir', {out!r},
            '--distortions'] + sys.argv[1:]
import runpy
runpy.run_path({tool!r}, run_name='__main__')
"""


def test_two_concurrent_sweeps_into_one_out_dir(tiny_detector, tmp_path, repo_root):
    """Both sweeps' pairs end up in results.json (each finished pair merged under the lock)."""
    cfg_path, ckpt = tiny_detector
    out_dir = tmp_path / 'rob'
    script = tmp_path / 'run.py'
    script.write_text(TWO_SWEEPS.format(repo=str(repo_root), cfg=str(cfg_path), ckpt=str(ckpt),
                                        out=str(out_dir),
                                        tool=str(repo_root / 'tools' / 'test_robustness.py')))
    procs = [subprocess.Popen([sys.executable, str(script), *d], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for d in (['motion_blur', 'jpeg'], ['salt_pepper', 'ngrn'])]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    res = json.loads((out_dir / 'results.json').read_text())
    assert set(res['distorted']) == {'motion_blur', 'jpeg', 'salt_pepper', 'ngrn'}
    assert res['clean'] and res['summary']['mPC'] == pytest.approx(
        sum(v['1']['pascal_voc/mAP'] for v in res['distorted'].values()) / 4)


# ---- the one distortion route: the grid shows the sweep's pixels -------------------
def _sweep_images(cfg_path: Path, distortion: str, severity: int, seed: int) -> dict:
    """``{img_path: image}`` as the detection sweep's pipeline holds them right after Distort."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from fq_det.evaluation.robustness import _distorted_dataloader_cfg
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(cfg_path))
    loader = _distorted_dataloader_cfg(cfg.test_dataloader, distortion, severity, seed)
    dataset_cfg = dict(loader['dataset'])
    pipeline = list(dataset_cfg['pipeline'])
    at = [i for i, t in enumerate(pipeline) if t['type'] == 'mmdet.Distort'][0]
    dataset_cfg['pipeline'] = pipeline[:at + 1]
    ds = DATASETS.build(dataset_cfg)
    return {ds[i]['img_path']: ds[i]['img'] for i in range(len(ds))}


@pytest.mark.parametrize('distortion', ['salt_pepper', 'targeted_occlusion'])
def test_grid_shows_the_sweeps_distorted_image(distortion, tiny_detector, tmp_path, synthetic_voc_root,
                                               monkeypatch):
    """The detection grid (and demo) distort an image exactly as the sweep does."""
    import mmdet.apis
    from mmdet.apis import init_detector

    from fq_det.datasets.distortion_route import distort_image, file_image_key
    from fq_det.datasets.voc_xml import read_voc_boxes
    from fq_det.visualization import draw_detection_grid
    cfg_path, ckpt = tiny_detector
    seen = []
    real = mmdet.apis.inference_detector

    def recording(model, img, *args, **kwargs):
        seen.append(np.array(img, copy=True))
        return real(model, img, *args, **kwargs)

    monkeypatch.setattr(mmdet.apis, 'inference_detector', recording)
    sweep = _sweep_images(cfg_path, distortion, 5, seed=3)
    images = sorted(sweep)[:2]
    ann = synthetic_voc_root / 'VOC2007' / 'Annotations'
    boxes = {p: read_voc_boxes(ann / f'{Path(p).stem}.xml') for p in images}
    model = init_detector(str(cfg_path), str(ckpt), device='cpu')
    draw_detection_grid(model, images, [('clean', 0), (distortion, 5)], tmp_path / 'g.png',
                        seed=3, boxes=boxes, allow_detection_boxes=False, progress=False,
                        cell_px=64)
    shown = seen[1::2]  # per image: clean, then the distorted column
    assert len(shown) == 2
    for path, img in zip(images, shown):
        assert np.array_equal(img, sweep[path]), path
        assert not np.array_equal(img, seen[0 if path == images[0] else 2])  # really distorted
        assert np.array_equal(img, distort_image(seen[0 if path == images[0] else 2], distortion,
                                                 5, 3, file_image_key(path), boxes[path]))
