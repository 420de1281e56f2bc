# The two readings of POW on detection: the main job's small Faster R-CNN (ResNet-18 at 1/4
# width, backbone pretrained on the set's object crops with the same quantizer) plain, POW-1
# offset (p = 1 + alpha; shared with detection_quantizers.py) and two direct-reading
# variants (p = alpha, the penalty pulls p toward 0) chosen from crops_pow_readings.py: L1
# 1e-4 (no cost on the crops, most of stage 4 quantized) and POW in place of the ReLU (the
# largest mPC and rPC there); five seeds, 300 test images, every distortion at severities
# 1/3/5.
#   python tools/robustness_study.py run configs/studies/detection_pow_readings.py --jobs 2
_base_ = ['./detection_quantizers.py']
_det = 'configs/synthvoc/faster_rcnn_r18_synthvoc.py'
_crops = 'configs/classification/synthvoc/resnet18_synthvoc-crops.py'


def _direct(weight, **backbone):
    """POW-1 direct with L1 ``weight`` in stages 2-4, for the pretraining and the detector."""
    return {'model.backbone.type': 'mmdet.ResNetPOW',
            'model.backbone.quant_cfg': dict(num_splits=1, exponent='direct',
                                             alpha_reg=dict(type='L1', weight=weight)),
            'model.backbone.stage_with_quant': (False, True, True, True),
            **{f'model.backbone.{k}': v for k, v in backbone.items()},
            'custom_hooks': [dict(type='mmdet.AlphaRegularizationHook')]}


_replace = _direct(1e-4, quant_position='replace_relu')


study = dict(
    variants=dict(
        _delete_=True,
        plain={{_base_.study.variants.plain}},
        pow1={{_base_.study.variants.pow1}},
        pow1_direct_l1_w1e4=dict(config=_det, cfg_options=_direct(1e-4), pretrain=_crops,
                                 pretrain_cfg_options=_direct(1e-4),
                                 label='+POW-1 direct, L1 1e-4'),
        pow1_direct_replace_relu=dict(config=_det, cfg_options=_replace, pretrain=_crops,
                                      pretrain_cfg_options=_replace,
                                      label='+POW-1 direct in place of the ReLU'),
    ),
)
