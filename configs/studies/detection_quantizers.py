# Detection study: the main job's small Faster R-CNN (ResNet-18 at 1/4 width, backbone
# pretrained on the set's object crops) plain and with each quantizer, five seeds, 300 test
# images, every distortion at severities 1/3/5.
#   python tools/robustness_study.py run configs/studies/detection_quantizers.py --jobs 2
_det = 'configs/synthvoc/'
_crops = 'configs/classification/synthvoc/'
_stages = (False, True, True, True)
_hooks = [dict(type='mmdet.AlphaRegularizationHook')]


def _backbone(backbone, quant_cfg, stages=_stages):
    """The same quantized backbone for the crop pretraining and for the detector."""
    return {'model.backbone.type': backbone, 'model.backbone.quant_cfg': quant_cfg,
            'model.backbone.stage_with_quant': stages, 'custom_hooks': _hooks}


_l1 = dict(type='L1', weight=1e-4)
_sf10 = _backbone('mmdet.ResNetSF', dict(resolution=10))
_hpow1 = _backbone('mmdet.ResNetHPOW', dict(num_splits=1, reduction=4, alpha_reg=_l1))
study = dict(
    runs='detection_synthvoc',  # run folder shared with the other detection studies
    task='detection',
    data=dict(type='synthvoc', num_train=2000, num_test=300, image_size=(160, 120), seed=0),
    variants=dict(
        plain=dict(config=_det + 'faster_rcnn_r18_synthvoc.py',
                   pretrain=_crops + 'resnet18_synthvoc-crops.py', label='ResNet-18'),
        sf10=dict(config=_det + 'faster_rcnn_r18_synthvoc.py', cfg_options=_sf10,
                  pretrain=_crops + 'resnet18_synthvoc-crops.py', pretrain_cfg_options=_sf10,
                  label='+SF-10'),
        pow1=dict(config=_det + 'faster_rcnn_r18_pow_synthvoc.py',
                  pretrain=_crops + 'resnet18-pow1-l1_synthvoc-crops.py', label='+POW-1'),
        pow1_alpha=dict(config=_det + 'faster_rcnn_r18_pow-alpha_synthvoc.py',
                        pretrain=_crops + 'resnet18-pow1-l1-alpha_synthvoc-crops.py',
                        label='+POW-1, alpha recipe'),
        hpow1=dict(config=_det + 'faster_rcnn_r18_synthvoc.py', cfg_options=_hpow1,
                   pretrain=_crops + 'resnet18_synthvoc-crops.py', pretrain_cfg_options=_hpow1,
                   label='+HPOW-1'),
    ),
    reference='plain',
    seeds=[0, 1, 2, 3, 4],
    distortions='all',
    severities=[1, 3, 5],
    bootstrap=dict(replicates=1000, confidence=0.95),
)
