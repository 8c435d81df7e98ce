"""Parameter counts of every model of the zoo next to the study's, and of
the HF models the HF bridge builds (random weights, no download).

    python benchmarks/param_counts.py [--out work_dirs/benchmarks]

Rows: each baseline (cardamage_mmseg.zoo), built as its config says, and
HF's own SegformerForSemanticSegmentation-b3/-b0 (transformers' defaults
for nvidia/segformer-b3 / -b0: hidden sizes, depths, decoder width), so
the HF-structured head can be checked against the module it copies.
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.report import save_report  # noqa: E402

#: transformers' SegformerConfig of nvidia/segformer-b3 / -b0 (2 labels)
HF_SEGFORMER = {
    'b3': dict(depths=[3, 4, 18, 3], hidden_sizes=[64, 128, 320, 512],
               decoder_hidden_size=768),
    'b0': dict(depths=[2, 2, 2, 2], hidden_sizes=[32, 64, 160, 256],
               decoder_hidden_size=256),
}


def count(model) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=osp.join(REPO, 'work_dirs',
                                             'benchmarks'))
    args = p.parse_args(argv)
    import cardamage_mmseg.register  # noqa: F401  (before mmseg: shim)
    from mmengine.registry import init_default_scope

    from cardamage_mmseg.zoo import BASELINES, build_baseline
    init_default_scope('mmseg')
    rows = []
    for name, base in BASELINES.items():
        rows.append(dict(model=name, config=base.config,
                         params_m=round(count(build_baseline(name, REPO)), 2),
                         study=base.study_name,
                         study_params_m=base.study_params_m))
    try:
        import transformers
    except ImportError:
        transformers = None
    if transformers is not None:
        for size, fields in HF_SEGFORMER.items():
            model = transformers.SegformerForSemanticSegmentation(
                transformers.SegformerConfig(num_labels=2, **fields))
            rows.append(dict(model=f'HF SegformerForSemanticSegmentation-'
                             f'{size}', config='(transformers)',
                             params_m=round(count(model), 2), study='-',
                             study_params_m=None))
    print('| model | config | params (M) | study model | study params (M) |')
    print('|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["model"]} | `{r["config"]}` | {r["params_m"]} | '
              f'{r["study"]} | {r["study_params_m"] or "-"} |')
    save_report(dict(rows=rows), args.out, 'param_counts', 'cpu')
    return 0


if __name__ == '__main__':
    sys.exit(main())
