# The detection studies on the field's benchmark: the 15 common corruptions of Pascal-C /
# COCO-C (Michaelis et al. 2019; `--distortions benchmark`, applied before the resize) at
# severities 1/3/5, with the models of the paper's-distortion studies: plain, POW-1 offset,
# POW-1 direct in place of the ReLU (the replicated gain on the paper's distortions), each
# as trained and with test-time BN adaptation (N = 0, 32 test images per condition), 5 seeds,
# the same data and 300 test images. Its own run folder: the benchmark sweep differs from
# the paper's, and the trained models are made again here.
#   python tools/robustness_study.py run configs/studies/detection_benchmark.py --jobs 2
_base_ = ['./detection_pow_readings.py']
_bn = dict(prior_strength=0, num_images=32)

study = dict(
    runs='detection_benchmark',
    variants=dict(
        _delete_=True,
        plain={{_base_.study.variants.plain}},
        pow1={{_base_.study.variants.pow1}},
        pow1_direct_replace_relu={{_base_.study.variants.pow1_direct_replace_relu}},
        plain_bn=dict(train_as='plain', bn_adapt=_bn, label='ResNet-18 + BN adapt.'),
        pow1_direct_replace_relu_bn=dict(train_as='pow1_direct_replace_relu', bn_adapt=_bn,
                                         label='+POW-1 direct in place of the ReLU + BN adapt.'),
    ),
    distortions='benchmark',
)
