# A replication on fresh seeds of the detectable gain of detection_pow_readings.py (POW-1,
# direct reading, in place of the ReLU: clean +0.036 [+0.011, +0.060], mPC +0.054 [+0.028,
# +0.080] over seeds 0-4, the study's one variant with a gain), fixed before it ran: the
# same plain and quantized detectors, data and protocol, seeds 5-9 only (plain's seeds 5-9
# are the runs of detection_pow1_replication.py). Shares the run folder.
#   python tools/robustness_study.py run configs/studies/detection_replace_relu_replication.py --jobs 2
_base_ = ['./detection_pow_readings.py']

study = dict(
    variants=dict(_delete_=True, plain={{_base_.study.variants.plain}},
                  pow1_direct_replace_relu={{_base_.study.variants.pow1_direct_replace_relu}}),
    seeds=[5, 6, 7, 8, 9],
)
