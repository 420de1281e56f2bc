# A replication on fresh seeds of the one detectable quantizer effect in
# detection_quantizers.py (POW-1 mPC +0.010 [+0.004, +0.017] over seeds 0-4, one of 20
# comparisons): the same plain and POW-1 detectors, data and protocol, seeds 5-9 only.
# Shares the run folder with the other detection studies.
#   python tools/robustness_study.py run configs/studies/detection_pow1_replication.py --jobs 2
_base_ = ['./detection_quantizers.py']

study = dict(
    variants=dict(_delete_=True, plain={{_base_.study.variants.plain}},
                  pow1={{_base_.study.variants.pow1}}),
    seeds=[5, 6, 7, 8, 9],
)
