"""The report of a robustness study: every raw number per seed (``study.json``), the tables
with intervals and verdicts (``study.md``) and the severity curves (``study.png``).

Rows, per run (``m`` the sweep's metric, ``D`` the distortions, ``S`` the severities)::

    P = m_clean,  m_d = mean_s m_{d,s},  mPC = mean_{d,s} m_{d,s},  rPC = mPC / P
    mPC seen / unseen: mPC over the study's ``seen_distortions`` / the others
    mCE, relative mCE: fq_det.evaluation.summary.corruption_errors against the
    reference variant's run with the same seed

Per variant and row: mean and t interval over seeds; the difference to the reference,
paired by seed, with its t interval and verdict; and, when the sweeps kept per-image
records, a paired bootstrap over test images of the same difference within each seed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from fq_det.analysis.alpha_stats import AMPLIFYING_ABOVE, EXPONENT_BINS, QUANTIZING_BELOW
from fq_det.evaluation import statistics as st
from fq_det.evaluation.summary import corruption_errors, performance_rows
from fq_det.studies.config import Study, repo_relative
from fq_det.studies.errors import StudyError
from fq_det.studies.records import bootstrap_differences, load_compact_records
from fq_det.studies.run_folder import RECORDS_FILE, RUN_RECORD, changed_settings, read_record

LOWER_IS_BETTER = ('mCE', 'relative mCE')


def _full_scale(metric_key: str) -> float:
    return 100.0 if 'accuracy' in metric_key else 1.0


def _conditions(results: dict, key: str, distortions, severities) -> tuple[float, dict] | None:
    """``(clean, {d: {s: value}})`` of one sweep's results, or None if a pair is missing."""
    try:
        clean = float(results['clean'][key])
        distorted = {d: {s: float(results['distorted'][d][str(s)][key]) for s in severities}
                     for d in distortions}
    except (KeyError, TypeError, ValueError):
        return None
    return clean, distorted


def _load_runs(study) -> tuple[dict, list[str], str | None]:
    runs, missing, metric_key = {}, [], None
    for variant, seed in study.runs():
        run_dir = study.run_dir(variant, seed)
        rec_file, res_file = run_dir / RUN_RECORD, run_dir / 'sweep' / 'results.json'
        if not (rec_file.is_file() and res_file.is_file()):
            missing.append(f'{variant} seed {seed}: not finished ({run_dir})')
            continue
        changed = changed_settings(study, variant, seed)
        if changed:
            missing.append(f'{variant} seed {seed}: made with other settings (changed: '
                           f'{", ".join(changed)}); `run --overwrite` redoes it')
            continue
        record, results = read_record(rec_file), read_record(res_file)
        if not isinstance(results.get('metric_key'), str):
            raise StudyError(f'{res_file} has no metric_key: not the results file of a sweep; '
                             'delete it to redo that sweep')
        metric_key = metric_key or results['metric_key']
        values = _conditions(results, metric_key, study.distortions, study.severities)
        if values is None:
            missing.append(f'{variant} seed {seed}: sweep lacks some (distortion, severity) pairs')
            continue
        runs[(variant, seed)] = dict(record=record, clean=values[0], distorted=values[1])
    return runs, missing, metric_key


def _per_run_rows(study, runs: dict, full: float) -> dict:
    """``{(variant, seed): {row: value}}`` including mCE against the same seed's reference."""
    table = {}
    for (variant, seed), r in runs.items():
        rows = performance_rows(r['clean'], r['distorted'], study.seen_distortions)
        ref = runs.get((study.reference, seed))
        if ref is not None:
            ce = corruption_errors(r['distorted'], r['clean'], ref['distorted'], ref['clean'],
                                      full=full)
            rows['mCE'], rows['relative mCE'] = ce['mCE'], ce['relative_mCE']
        table[(variant, seed)] = rows
    return table


def _bootstrap(study, runs: dict) -> tuple[dict, list[str]]:
    """Per variant and seed: percentile intervals of (variant - reference) over test images;
    and the finished runs left out of them for want of per-image records (``'v seed s: why'``).
    """
    replicates = int(study.bootstrap.get('replicates', 0))
    if not replicates:
        return {}, []
    out, missing = {}, []
    for seed in study.seeds:
        if (study.reference, seed) not in runs:
            continue
        models = {}
        for v in study.variants:
            if (v, seed) not in runs:
                continue
            try:
                models[v] = load_compact_records(study.run_dir(v, seed) / RECORDS_FILE,
                                                 study.distortions, study.severities)
            except FileNotFoundError as err:
                missing.append(f'{v} seed {seed}: no per-image records, `run` rebuilds '
                               f'{RECORDS_FILE} from sweep/per_image/ when that is there ({err})')
        if study.reference not in models:
            missing += [f'{v} seed {seed}: the reference has no per-image records for this seed'
                        for v in models]
            continue
        if len(models) < 2:
            continue
        diffs = bootstrap_differences(
            models, study.reference, lambda c, d: performance_rows(c, d, study.seen_distortions),
            replicates=replicates, seed=seed,
            confidence=float(study.bootstrap.get('confidence', 0.95)))
        for v, rows in diffs.items():
            out.setdefault(v, {})[seed] = rows
    return out, missing


def _aggregate(study, per_run: dict, bootstrap: dict) -> dict:
    conf = float(study.bootstrap.get('confidence', 0.95))
    rows = list(dict.fromkeys(r for rows in per_run.values() for r in rows))
    variants = {}
    for v in study.variants:
        seeds = [s for s in study.seeds if (v, s) in per_run]
        entry = dict(seeds=seeds, rows={})
        for row in rows:
            by_seed = {s: per_run[(v, s)][row] for s in seeds if row in per_run[(v, s)]}
            ref = {s: per_run[(study.reference, s)][row] for s in study.seeds
                   if (study.reference, s) in per_run and row in per_run[(study.reference, s)]}
            cell = dict(per_seed=by_seed, interval=st.t_interval(list(by_seed.values()),
                                                                 conf).as_dict(),
                        std=float(np.std(list(by_seed.values()), ddof=1))
                        if len(by_seed) > 1 else math.nan)
            if v != study.reference:
                diff = st.paired_difference(by_seed, ref, conf)
                cell['difference'] = diff.as_dict()
                cell['verdict'] = st.verdict(diff, higher_is_better=row not in LOWER_IS_BETTER)
                boot = [bootstrap.get(v, {}).get(s, {}).get(row) for s in seeds]
                boot = [b for b in boot if b]
                if boot:
                    cell['bootstrap_per_seed'] = {s: bootstrap[v][s][row] for s in seeds
                                                  if s in bootstrap.get(v, {})}
                    widths = [b['half_width'] for b in boot]
                    cell['bootstrap_mean_half_width'] = (
                        float(np.nanmean(widths)) if np.isfinite(widths).any() else math.nan)
            entry['rows'][row] = cell
        variants[v] = entry
    return dict(rows=rows, variants=variants)


_EXPONENT_KEYS = ('mean', 'std', 'mean_abs', 'frac_moved', 'p_mean', 'p_std', 'frac_quantizing',
                  'frac_amplifying')


def _alpha_summary(study, runs: dict) -> dict:
    """Per variant with exponents: per layer, the seed means of the exponent statistics
    (``nan`` where a record lacks one) and the histogram of ``p`` summed over seeds."""
    out = {}
    for v in study.variants:
        reports = [runs[(v, s)]['record'].get('alpha') for s in study.seeds if (v, s) in runs]
        reports = [rep for rep in reports if rep]
        if not reports:
            continue
        layers = []
        for name in [row['layer'] for row in reports[0]]:
            rows = [[row for row in rep if row['layer'] == name][0] for rep in reports]
            entry = dict(layer=name, **{k: float(np.mean([r.get(k, math.nan) for r in rows]))
                                        for k in _EXPONENT_KEYS}, seeds=len(reports))
            hists = [r['p_hist'] for r in rows if 'p_hist' in r]
            if hists:
                entry['p_hist'] = [int(c) for c in np.sum(hists, axis=0)]
            layers.append(entry)
        out[v] = layers
    return out


def _curves(study, runs: dict) -> dict:
    out = {}
    for v in study.variants:
        curves = [runs[(v, s)]['record'].get('curve') or [] for s in study.seeds if (v, s) in runs]
        if curves and all(curves):
            steps = sorted(set.intersection(*[{int(p[0]) for p in c} for c in curves]))
            by = [dict((int(p[0]), p[1]) for p in c) for c in curves]
            out[v] = [[s, float(np.mean([b[s] for b in by]))] for s in steps]
    return out


# ---------------------------------------------------------------------- formatting
def _fmt(x: float, pct: bool, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return '-'
    return f'{x:+.{1 if pct else 3}f}' if signed else f'{x:.{1 if pct else 3}f}'


def _fmt_row(row: str, x: float, pct: bool, signed: bool = False) -> str:
    if row == 'rPC' or row in LOWER_IS_BETTER:
        return '-' if not math.isfinite(x) else (f'{100 * x:+.1f} %' if signed else
                                                 f'{100 * x:.1f} %')
    return _fmt(x, pct, signed)


_MARK = {'better': '**better**', 'worse': '**worse**', 'no detectable difference': '='}


def _group_missing(missing: list[str]) -> list[str]:
    """``'v seed 1: why'``, ``'v seed 2: why'`` -> ``'v seeds 1, 2: why'``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for m in missing:
        head, _, why = m.partition(': ')
        variant, _, seed = head.rpartition(' seed ')
        groups.setdefault((variant, why.split(' (')[0]), []).append(seed)
    return [f'{v} seed{"s" if len(seeds) > 1 else ""} {", ".join(seeds)}: {why}'
            for (v, why), seeds in groups.items()]


def _difference_table(study, agg: dict, variants: list, rows: list, pct: bool) -> list[str]:
    """Markdown rows: one per variant, one column per summary row, ``diff [lo, hi] verdict``."""
    lines = ['| variant | ' + ' | '.join(_row_label(study, r) for r in rows) + ' |',
             '|---|' + '---|' * len(rows)]
    for v in variants:
        cells = []
        for row in rows:
            cell = agg['variants'][v]['rows'].get(row, {})
            d = cell.get('difference')
            if not d or d['n'] == 0:
                cells.append('-')
            elif d['n'] == 1:
                cells.append(f'{_fmt_row(row, d["mean"], pct, True)} (1 seed)'
                             + _one_seed_interval(row, cell, pct))
            else:
                cells.append(f'{_fmt_row(row, d["mean"], pct, True)} '
                             f'[{_fmt_row(row, d["low"], pct, True)}, '
                             f'{_fmt_row(row, d["high"], pct, True)}] {_MARK[cell["verdict"]]}')
        lines.append(f'| {study.variants[v].label} | ' + ' | '.join(cells) + ' |')
    return lines


def _one_seed_interval(row: str, cell: dict, pct: bool) -> str:
    """`` [lo, hi] over test images``: a one-seed difference's image-bootstrap interval
    (no verdict: it says how much is test-set sampling, not training noise); else `` =``."""
    boot = list((cell.get('bootstrap_per_seed') or {}).values())
    if len(boot) != 1:
        return ' ='
    return (f' [{_fmt_row(row, boot[0]["low"], pct, True)}, '
            f'{_fmt_row(row, boot[0]["high"], pct, True)}] over test images')


def _row_label(study, row: str) -> str:
    """Distortions some variant trained with are marked: they are not a fair test of it."""
    if row in study.seen_distortions:
        return f'{row} (seen)'
    if study.seen_distortions and row in study.distortions:
        return f'{row} (unseen)'
    return row


def format_markdown(study: Study, report: dict) -> str:
    """``study.md``: what was run and what is missing, the per-variant table, the
    differences to the reference, the Table 3 layout (classification), the learned
    exponents and the time per run."""
    pct = report['metric_key'].startswith('accuracy')
    conf = int(round(100 * float(study.bootstrap.get('confidence', 0.95))))
    lines = _header_lines(study, report)
    lines += _per_variant_lines(study, report['aggregate'], pct, conf)
    lines += _difference_lines(study, report['aggregate'], pct, conf)
    if study.task == 'classification':
        lines += _table3_lines(study, report['aggregate'])
    if report['alpha']:
        lines += _exponent_lines(study, report['alpha'])
    if report['timings']:
        lines += _timing_lines(study, report)
    return '\n'.join(lines) + '\n'


def _header_lines(study: Study, report: dict) -> list[str]:
    agg = report['aggregate']
    lines = [f'# Robustness study `{study.name}`', '',
             f'Task: {study.task}; metric `{report["metric_key"]}`; data: {_data_text(study)}; '
             f'seeds {list(study.seeds)}; distortions {", ".join(study.distortions)} at '
             f'severities {list(study.severities)}; reference `{study.reference}`.', '',
             f'Finished runs: {report["finished"]}/{report["total"]}.']
    if report['missing']:
        lines += ['', 'Missing (in no number below):', '']
        lines += [f'- {m}' for m in _group_missing(report['missing'])]
    if report.get('missing_records'):
        lines += ['', 'Missing from the within-run bootstrap only (in every other number):', '']
        lines += [f'- {m}' for m in _group_missing(report['missing_records'])]
    few = [study.variants[v].label for v in study.variants
           if len(agg['variants'][v]['seeds']) == 1]
    if few:
        lines += ['', 'Confidence intervals over seeds need at least 2 seeds; with one finished '
                  f'seed ({", ".join(few)}) the values below have no interval and no verdict '
                  '(`=`).']
    return lines


def _per_variant_lines(study: Study, agg: dict, pct: bool, conf: int) -> list[str]:
    names = list(study.variants)
    lines = ['', f'## Per variant: mean ± {conf} % CI half-width over seeds (n)', '',
             '| | ' + ' | '.join(study.variants[v].label for v in names) + ' |',
             '|---|' + '---:|' * len(names)]
    for row in agg['rows']:
        cells = []
        for v in names:
            iv = agg['variants'][v]['rows'].get(row, {}).get('interval')
            if not iv or iv['n'] == 0:
                cells.append('-')
                continue
            hw = '' if not math.isfinite(iv['half_width']) else \
                f' ± {_fmt_row(row, iv["half_width"], pct)}'
            cells.append(f'{_fmt_row(row, iv["mean"], pct)}{hw} ({iv["n"]})')
        lines.append(f'| {_row_label(study, row)} | ' + ' | '.join(cells) + ' |')
    return lines


def _difference_lines(study: Study, agg: dict, pct: bool, conf: int) -> list[str]:
    """The differences to the reference (summary rows, then per distortion) and the
    within-run image bootstrap's half-widths."""
    others = [v for v in study.variants if v != study.reference]
    if not others:
        return []
    ref_label = study.variants[study.reference].label
    summary = [r for r in agg['rows'] if r not in study.distortions]
    lines = ['', f'## Difference to `{ref_label}`, paired by seed', '',
             f'Mean difference over seeds [{conf} % CI] and verdict: **better**, **worse**, '
             f'or `=` (no detectable difference: the interval contains 0).', '']
    lines += _difference_table(study, agg, others, summary, pct)
    lines += ['', 'Per distortion (severities averaged):', '']
    lines += _difference_table(study, agg, others, list(study.distortions), pct)
    boot_rows = [r for r in summary if r not in LOWER_IS_BETTER]
    if not any('bootstrap_mean_half_width' in agg['variants'][v]['rows'].get(r, {})
               for v in others for r in boot_rows):
        return lines
    lines += ['', f'Within one run: {conf} % CI half-width of the same difference from '
              'resampling the test images (paired image bootstrap, mean over seeds): '
              'how much of a single run\'s difference is test-set sampling.', '',
              '| variant | ' + ' | '.join(boot_rows) + ' |',
              '|---|' + '---:|' * len(boot_rows)]
    for v in others:
        cells = [agg['variants'][v]['rows'].get(r, {}).get('bootstrap_mean_half_width')
                 for r in boot_rows]
        lines.append(f'| {study.variants[v].label} | ' + ' | '.join(
            '-' if c is None else f'± {_fmt_row(r, c, pct)}'
            for r, c in zip(boot_rows, cells)) + ' |')
    return lines


def _table3_lines(study: Study, agg: dict) -> list[str]:
    lines = ['', '## In the layout of the supplement\'s Table 3: top-1 % mean ± std over '
             'seeds (severities averaged)', '',
             '| Model | clean | ' + ' | '.join(_row_label(study, d) for d in study.distortions)
             + ' |',
             '|---|' + '---:|' * (len(study.distortions) + 1)]
    for v, variant in study.variants.items():
        cells = []
        for row in ['P', *study.distortions]:
            c = agg['variants'][v]['rows'].get(row)
            if not c or not c['per_seed']:
                cells.append('-')
                continue
            std = c['std']
            cells.append(f'{c["interval"]["mean"]:.1f}' +
                         (f' ± {std:.1f}' if math.isfinite(std) else ''))
        lines.append(f'| {variant.label} | ' + ' | '.join(cells) + ' |')
    return lines


def _exponent_lines(study: Study, alpha: dict) -> list[str]:
    lines = ['', '## Learned exponents p (per layer, means over seeds)', '',
             f'mean and std of p, mean |p - 1| (the distance from the identity), the share '
             f'of channels with p < {QUANTIZING_BELOW:g} (quantizing) and with p > '
             f'{AMPLIFYING_ABOVE:g} (amplifying); HPOW: the exponents predicted on test '
             'images. Histograms: study_exponents.png.', '']
    for v, layers in alpha.items():
        lines += [f'### {study.variants[v].label}', '',
                  f'| layer | mean p | std p | mean abs(p - 1) | p < {QUANTIZING_BELOW:g} | '
                  f'p > {AMPLIFYING_ABOVE:g} |', '|---|---:|---:|---:|---:|---:|']
        lines += [f'| {r["layer"]} | {r["p_mean"]:.4f} | {r["p_std"]:.4f} | '
                  f'{r["mean_abs"]:.4f} | {_share(r["frac_quantizing"])} | '
                  f'{_share(r["frac_amplifying"])} |' for r in layers]
        lines.append('')
    return lines


def _timing_lines(study: Study, report: dict) -> list[str]:
    lines = ['', '## Time per run (mean over finished seeds, s)', '',
             '| variant | ' + ' | '.join(report['timing_keys']) + ' |',
             '|---|' + '---:|' * len(report['timing_keys'])]
    for v, t in report['timings'].items():
        lines.append(f'| {study.variants[v].label} | ' +
                     ' | '.join(f'{t.get(k, math.nan):.0f}' for k in report['timing_keys'])
                     + ' |')
    return lines


def _share(x: float) -> str:
    return f'{100 * x:.1f} %' if math.isfinite(x) else '-'


def _data_text(study) -> str:
    d = study.data
    if d['type'] in ('synthvoc', 'synthcoco'):
        layout = 'VOC' if d['type'] == 'synthvoc' else 'set in the COCO layout'
        return (f'synthetic {layout}, {d["num_train"]} trainval / {d["num_test"]} test images '
                f'{d["image_size"][0]}x{d["image_size"][1]}, data seed {d["seed"]}')
    return str(d['root'])


def plot_study(study, report: dict, out_file: Path) -> Path:
    """Per distortion: metric vs severity (0 = clean), seed mean and CI band per variant."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    per_run = report['per_condition']
    n = len(study.distortions)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    xs = [0, *study.severities]
    for ax, d in zip(axes.flat, study.distortions):
        for v in study.variants:
            seeds = [s for s in study.seeds if f'{v}/{s}' in per_run]
            if not seeds:
                continue
            ivs = [st.t_interval([per_run[f'{v}/{s}']['clean'] if x == 0 else
                                  per_run[f'{v}/{s}']['distorted'][d][str(x)] for s in seeds])
                   for x in xs]
            mean = [iv.mean for iv in ivs]
            line, = ax.plot(xs, mean, marker='o', ms=3, label=study.variants[v].label)
            lo = [iv.low if math.isfinite(iv.low) else iv.mean for iv in ivs]
            hi = [iv.high if math.isfinite(iv.high) else iv.mean for iv in ivs]
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
        ax.set_title(d, fontsize=9)
        ax.set_xticks(xs)
        ax.set_xticklabels(['clean', *map(str, study.severities)], fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis('off')
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=min(len(labels), 5), fontsize=8)
    fig.suptitle(f'{study.name}: {report["metric_key"]} vs severity (mean, '
                 f'{int(100 * float(study.bootstrap.get("confidence", 0.95)))} % CI over seeds)',
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return out_file


def build_report(study, out_dir: Path) -> dict:
    """Aggregate whatever has finished; write study.json/.md/.png into ``out_dir``."""
    runs, missing, metric_key = _load_runs(study)
    if not runs:
        shown = '; '.join(missing[:3]) + ('; ...' if len(missing) > 3 else '')
        raise FileNotFoundError(f'no finished run under {study.work_dir}/runs: nothing to report '
                                f'({len(missing)} runs missing: {shown})')
    full = _full_scale(metric_key)
    per_run = _per_run_rows(study, runs, full)
    bootstrap, missing_records = _bootstrap(study, runs)
    timing_keys = sorted({k for r in runs.values() for k in r['record'].get('timings_s', {})})
    timings = {v: {k: float(np.mean([runs[(v, s)]['record']['timings_s'][k] for s in study.seeds
                                     if (v, s) in runs and k in runs[(v, s)]['record']
                                     .get('timings_s', {})]))
                   for k in timing_keys}
               for v in study.variants if any((v, s) in runs for s in study.seeds)}
    report = dict(
        study=study.name, config=repo_relative(study.config_file), task=study.task,
        metric_key=metric_key,
        data=study.data, seeds=list(study.seeds), distortions=list(study.distortions),
        severities=list(study.severities), reference=study.reference,
        seen_distortions=list(study.seen_distortions),
        variants={v: dict(config=repo_relative(x.config), cfg_options=x.cfg_options,
                          pretrain=repo_relative(x.pretrain),
                          label=x.label) for v, x in study.variants.items()},
        total=len(study.runs()), finished=len(runs), missing=missing,
        missing_records=missing_records,
        per_condition={f'{v}/{s}': dict(clean=r['clean'],
                                        distorted={d: {str(k): x for k, x in by.items()}
                                                   for d, by in r['distorted'].items()})
                       for (v, s), r in runs.items()},
        per_run_rows={f'{v}/{s}': rows for (v, s), rows in per_run.items()},
        aggregate=_aggregate(study, per_run, bootstrap),
        alpha=_alpha_summary(study, runs), curves=_curves(study, runs),
        pretrain_top1={f'{v}/{s}': (r['record'].get('pretrain') or {}).get('top1')
                       for (v, s), r in runs.items() if r['record'].get('pretrain')},
        timings=timings, timing_keys=timing_keys)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'study.json').write_text(json.dumps(report, indent=1, default=_json_default))
    (out_dir / 'study.md').write_text(format_markdown(study, report))
    plot_study(study, report, out_dir / 'study.png')
    if report['curves']:
        plot_curves(study, report, out_dir / 'study_curves.png')
    if any('p_hist' in r for layers in report['alpha'].values() for r in layers):
        plot_exponents(study, report, out_dir / 'study_exponents.png')
    return report


def plot_exponents(study, report: dict, out_file: Path) -> Path:
    """The supplement's Fig. 2 per variant: the histogram of the learned exponents ``p`` of
    each stage (its layers pooled, all seeds), as the share of channels per bin."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    shown = {v: layers for v, layers in report['alpha'].items()
             if any('p_hist' in r for r in layers)}
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    edges = np.asarray(EXPONENT_BINS)
    for ax, (v, layers) in zip(axes.flat, shown.items()):
        stages: dict = {}
        for r in layers:
            if 'p_hist' in r and r['layer'] != 'ALL':
                stage = next((part for part in r['layer'].split('.') if part.startswith('layer')),
                             r['layer'])
                stages[stage] = stages.get(stage, 0) + np.asarray(r['p_hist'], dtype=float)
        for stage, counts in stages.items():
            ax.stairs(counts / max(counts.sum(), 1), edges, label=stage)
        ax.axvline(1.0, color='grey', lw=0.6, ls=':')
        ax.set_title(study.variants[v].label, fontsize=9)
        ax.set_xlabel('p (last bin: p >= 3)', fontsize=8)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis('off')
    fig.suptitle(f'{study.name}: learned exponents p per stage (share of channels)', fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return out_file


def plot_curves(study, report: dict, out_file: Path) -> Path:
    """Training loss against step, mean over seeds, one line per variant."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for v, curve in report['curves'].items():
        if curve:
            x, y = zip(*curve)
            ax.plot(x, y, label=study.variants[v].label, lw=1)
    ax.set_xlabel('training step (iteration)')
    ax.set_ylabel('training loss (mean over seeds)')
    ax.set_yscale('log')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return out_file


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f'not JSON serialisable: {type(x).__name__}')


def report_study(study: Study, out_dir: str | None = None) -> dict:
    """Aggregate the finished runs into ``study.json``, ``study.md`` and ``study.png``."""
    return build_report(study, Path(out_dir) if out_dir else study.report_dir)
