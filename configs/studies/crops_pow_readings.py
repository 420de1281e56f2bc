# The two readings of POW side by side on object-crop classification (ResNet-18 at 1/4
# width, quantizers in stages 2-4 unless named otherwise, 5 seeds, every distortion at
# severities 1/3/5 on ~2800 test crops). 'offset': p = 1 + alpha, the penalty pulls toward
# the identity (pow1, shared with crops_quantizers.py); 'direct': p = alpha starts at 1 and
# the penalty pulls p toward 0, where POW quantizes (docs/quantizers.md).
#   python tools/robustness_study.py run configs/studies/crops_pow_readings.py --jobs 2
_plain = 'configs/classification/synthvoc/resnet18_synthvoc-crops.py'
_stages = (False, True, True, True)
_hooks = [dict(type='mmdet.AlphaRegularizationHook')]


def _quant(backbone, quant_cfg, **extra):
    return dict({'model.backbone.type': backbone, 'model.backbone.quant_cfg': quant_cfg,
                 'model.backbone.stage_with_quant': _stages, 'custom_hooks': _hooks}, **extra)


def _direct(reg='L1', weight=1e-4, **quant):
    return dict(quant, exponent='direct', alpha_reg=dict(type=reg, weight=weight))


_bn = dict(prior_strength=0, num_images=64)
study = dict(
    runs='crops_synthvoc',  # run folder shared with the other crops studies
    task='classification',
    data=dict(type='synthvoc', num_train=2000, num_test=1000, image_size=(160, 120), seed=0),
    variants=dict(
        plain=dict(config=_plain, label='ResNet-18'),
        pow1=dict(config=_plain,
                  cfg_options=_quant('mmdet.ResNetPOW',
                                     dict(num_splits=1, alpha_reg=dict(type='L1', weight=1e-4))),
                  label='+POW-1 offset, L1 1e-4'),
        pow1_direct_l1_w1e5=dict(
            config=_plain, cfg_options=_quant('mmdet.ResNetPOW', _direct(weight=1e-5, num_splits=1)),
            label='+POW-1 direct, L1 1e-5'),
        pow1_direct_l1_w1e4=dict(
            config=_plain, cfg_options=_quant('mmdet.ResNetPOW', _direct(weight=1e-4, num_splits=1)),
            label='+POW-1 direct, L1 1e-4'),
        pow1_direct_l1_w1e3=dict(
            config=_plain, cfg_options=_quant('mmdet.ResNetPOW', _direct(weight=1e-3, num_splits=1)),
            label='+POW-1 direct, L1 1e-3'),
        pow1_direct_l2_w1e4=dict(
            config=_plain,
            cfg_options=_quant('mmdet.ResNetPOW', _direct('L2', 1e-4, num_splits=1)),
            label='+POW-1 direct, L2 1e-4'),
        pow4_direct=dict(
            config=_plain, cfg_options=_quant('mmdet.ResNetPOW', _direct(num_splits=4)),
            label='+POW-4 direct, L1 1e-4'),
        pow1_direct_replace_relu=dict(
            config=_plain,
            cfg_options=_quant('mmdet.ResNetPOW', _direct(num_splits=1),
                               **{'model.backbone.quant_position': 'replace_relu'}),
            label='+POW-1 direct in place of the ReLU'),
        hpow1_direct_meanstd=dict(
            config=_plain,
            cfg_options=_quant('mmdet.ResNetHPOW',
                               _direct(num_splits=1, reduction=4, statistics='mean_std')),
            label='+HPOW-1 direct from (mean, std)'),
        sfpow1_direct=dict(
            config=_plain,
            cfg_options=_quant('mmdet.ResNetSFPOW', _direct(num_splits=1, resolution=10)),
            label='+SF-10-POW-1 direct'),
        # HPOW direct from the pooled mean only: tells the reading from the statistics
        hpow1_direct=dict(
            config=_plain,
            cfg_options=_quant('mmdet.ResNetHPOW', _direct(num_splits=1, reduction=4)),
            label='+HPOW-1 direct from the mean'),
        # the variant with the largest mPC and rPC above, in all four stages (stage 1
        # trainable, where the supplement's Fig. 2 quantizes most), and with BN adaptation
        pow1_direct_replace_relu_s1=dict(
            config=_plain,
            cfg_options=_quant('mmdet.ResNetPOW', _direct(num_splits=1),
                               **{'model.backbone.quant_position': 'replace_relu',
                                  'model.backbone.stage_with_quant': (True, ) * 4}),
            label='+POW-1 direct in place of the ReLU, all 4 stages'),
        plain_bn=dict(train_as='plain', bn_adapt=_bn, label='ResNet-18 + BN adapt.'),
        pow1_direct_replace_relu_bn=dict(train_as='pow1_direct_replace_relu', bn_adapt=_bn,
                                         label='+POW-1 direct in place of the ReLU + BN adapt.'),
    ),
    reference='plain',
    seeds=[0, 1, 2, 3, 4],
    distortions='all',
    severities=[1, 3, 5],
    train=dict(epochs=6),
    bootstrap=dict(replicates=1000, confidence=0.95),
)
