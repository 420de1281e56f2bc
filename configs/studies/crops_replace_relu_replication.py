# A replication on fresh seeds of the crop result of crops_pow_readings.py that needed one:
# POW-1, direct reading, in place of the ReLU, in all four stages (stage 1 trainable):
# mPC +2.6 [+0.9, +4.2], rPC +4.9 % [+2.9, +6.9], clean -2.7 [-3.9, -1.5] over seeds 0-4,
# one of 55 summary comparisons of that study. Fixed before it ran: the same plain and
# quantized networks (and the stages 2-4 variant beside them), data and protocol, seeds 5-9
# only. Shares the run folder.
#   python tools/robustness_study.py run configs/studies/crops_replace_relu_replication.py --jobs 2
_base_ = ['./crops_pow_readings.py']

study = dict(
    variants=dict(
        _delete_=True, plain={{_base_.study.variants.plain}},
        pow1_direct_replace_relu={{_base_.study.variants.pow1_direct_replace_relu}},
        pow1_direct_replace_relu_s1={{_base_.study.variants.pow1_direct_replace_relu_s1}}),
    seeds=[5, 6, 7, 8, 9],
)
