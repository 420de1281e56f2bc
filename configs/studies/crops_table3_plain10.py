# The supplement's Table 3 Plain-10 rows on the embedded data: Plain-10 (narrow) on the
# synthetic set's object crops, plain and +POW-k (k = 1, 2, 4, 8; L1 1e-4) in both readings
# of the exponent, 5 seeds, every distortion at severity 3 (the middle one: Table 3 has one
# column per distortion; one severity instead of three cuts the sweep of the 45 runs by 3x).
#   python tools/robustness_study.py run configs/studies/crops_table3_plain10.py --jobs 2
_net = 'configs/classification/synthvoc/plain10_synthvoc-crops.py'
_hooks = [dict(type='mmdet.AlphaRegularizationHook')]
_variants = dict(plain=dict(config=_net, label='Plain-10'))
for _exp in ('offset', 'direct'):
    for _k in (1, 2, 4, 8):
        _variants[f'pow{_k}_{_exp}'] = dict(
            config=_net,
            cfg_options={'model.backbone.quant_cfg': dict(
                type='POW', num_splits=_k, exponent=_exp, alpha_reg=dict(type='L1', weight=1e-4)),
                'custom_hooks': _hooks},
            label=f'+POW-{_k} {_exp}')
study = dict(
    runs='crops_table3_plain10',
    task='classification',
    data=dict(type='synthvoc', num_train=2000, num_test=1000, image_size=(160, 120), seed=0),
    variants=_variants,
    reference='plain',
    seeds=[0, 1, 2, 3, 4],
    distortions='all',
    severities=[3],
    train=dict(epochs=6),
    bootstrap=dict(replicates=1000, confidence=0.95),
)
