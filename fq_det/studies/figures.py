"""Figures of one seed of a study: the severity curves of every finished variant
(:func:`~fq_det.visualization.plot_robustness`) and, for a detection study on VOC-layout
data, each variant's detections on the first test images, clean and under every distortion
(:func:`~fq_det.visualization.draw_detection_grid`)."""
from __future__ import annotations

import json
from pathlib import Path

from fq_det.studies.config import Study
from fq_det.studies.run_folder import RUN_RECORD, read_record

__all__ = ['draw_study_figures', 'GRID_SEVERITY']

#: The severity of the detection grids' distorted columns.
GRID_SEVERITY = 3


def _finished(study: Study, seed: int) -> dict[str, dict]:
    """``{variant: run.json}`` of the runs of ``seed`` that have finished."""
    runs = {v: read_record(study.run_dir(v, seed) / RUN_RECORD) for v in study.variants}
    return {v: r for v, r in runs.items() if r is not None}


def draw_study_figures(study: Study, out_dir: str | Path, seed: int | None = None,
                       grid_images: int = 3) -> dict[str, str]:
    """Write ``robustness.png`` (+ .csv) and ``grid_<variant>.png`` for ``seed`` (default:
    the study's first) into ``out_dir``; returns ``{figure name: path}``."""
    from fq_det.visualization import plot_robustness
    seed = study.seeds[0] if seed is None else seed
    out = Path(out_dir)
    runs = _finished(study, seed)
    if not runs:
        raise FileNotFoundError(f'no finished run of seed {seed} under {study.work_dir}/runs')
    results = [json.loads((study.run_dir(v, seed) / 'sweep' / 'results.json').read_text())
               for v in runs]
    labels = [study.variants[v].label for v in runs]
    figures = {'robustness': str(plot_robustness(results, labels, out / 'robustness.png')['figure'])}
    voc = study.data_root / 'VOC2007'
    if study.task == 'detection' and grid_images > 0 and (voc / 'ImageSets/Main/test.txt').is_file():
        for v, record in runs.items():
            if study.variants[v].train_as is None:  # (a test-time variant's model is its trainer's)
                figures[f'grid_{v}'] = _detection_grid(study, v, record, voc, seed, grid_images,
                                                       out)
    return figures


def _detection_grid(study: Study, variant: str, record: dict, voc: Path, seed: int,
                    num_images: int, out: Path) -> str:
    """One variant's detections on the first ``num_images`` test images, clean and under
    each of the study's distortions at :data:`GRID_SEVERITY`."""
    from mmdet.apis import init_detector

    from fq_det.engine.runs import run_config
    from fq_det.visualization import draw_detection_grid, read_voc_boxes
    v = study.variants[variant]
    cfg = run_config(v.config, study.data_root, out / 'work', seed, cfg_options=v.cfg_options)
    model = init_detector(cfg, record['checkpoint'], device='cpu')
    ids = (voc / 'ImageSets/Main/test.txt').read_text().split()[:num_images]
    images = [str(voc / 'JPEGImages' / f'{i}.jpg') for i in ids]
    boxes = {p: read_voc_boxes(voc / 'Annotations' / f'{i}.xml') for p, i in zip(images, ids)}
    conditions = [('clean', 0)] + [(d, GRID_SEVERITY) for d in study.distortions]
    return str(draw_detection_grid(model, images, conditions, out / f'grid_{variant}.png',
                                   seed=seed, boxes=boxes, progress=False)['figure'])
