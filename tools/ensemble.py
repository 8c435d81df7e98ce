"""Evaluate an ensemble next to its members, in one pass over the data.

    # members on the command line (mmseg 0.x model_ensemble.py style)
    python tools/ensemble.py --config C1 C2 --checkpoint K1 K2 \
        [--fusion union] [--weights 0.6 0.4] [--split test] [--data-root D] \
        [--show-dir DIR] [--out DIR] [--tta]
    # or an ensemble config
    python tools/ensemble.py configs/ensemble_dpt_segformer_cardamage.py
    # choose the fusion rule and weights on val, then report on test
    python tools/ensemble.py --config C1 C2 --checkpoint K1 K2 --search

Every member's probabilities are computed once per image; the members'
labels, the ensemble's and (with --search) every rule x weight candidate
are scored from them, so R rules x W weight sets cost one pass, not R x W.
Prints per-class IoU and mIoU of every member and of the ensemble.
"""
import argparse
import itertools
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import numpy as np  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmseg.evaluation.metrics import IoUMetric  # noqa: E402
from PIL import Image  # noqa: E402

import cardamage_mmseg.register  # noqa: E402,F401  (modules, safe loading)
from cardamage_mmseg.cli.main import UsageError, run  # noqa: E402
from cardamage_mmseg.core import (add_legend, atomic_write,  # noqa: E402
                                  overlay, save_mask, side_by_side,
                                  unique_names)
from cardamage_mmseg.models.segmentors import (  # noqa: E402
    FUSION_RULES, EnsembleSegmentor, fuse)
from cardamage_mmseg.utils.config import load_config  # noqa: E402

WEIGHTED = ('weighted_mean', 'weighted_vote')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('ensemble_config', nargs='?',
                   help='a config whose model is an EnsembleSegmentor')
    p.add_argument('--config', nargs='+', help='member configs')
    p.add_argument('--checkpoint', nargs='+', help='member checkpoints')
    p.add_argument('--fusion', choices=FUSION_RULES,
                   help='fusion rule (default: the config\'s, or mean)')
    p.add_argument('--weights', nargs='+', type=float)
    p.add_argument('--split', default='test', help='split to report on')
    p.add_argument('--data-root', help='override the data root')
    p.add_argument('--search', action='store_true',
                   help='pick rule and weights on --search-split first')
    p.add_argument('--search-split', default='val')
    p.add_argument('--show-dir', help='write image | ensemble | truth')
    p.add_argument('--out', help='write ensemble masks (palette PNGs of '
                   'class ids, as tools/infer.py)')
    p.add_argument('--tta', action='store_true',
                   help='horizontal-flip test-time augmentation per member')
    p.add_argument('--device', help='device of all members (default: cuda '
                   'if available, else cpu)')
    p.add_argument('--json', help='also write the results as JSON here')
    return p.parse_args(argv)


def build_ensemble(args):
    """EnsembleSegmentor and the dataset config to evaluate on."""
    if args.ensemble_config:
        cfg = load_config(args.ensemble_config)
        model_cfg = cfg.model.copy()
        if model_cfg.get('type') != 'EnsembleSegmentor':
            raise UsageError(f'{args.ensemble_config} does not define '
                             f'an EnsembleSegmentor model')
        model_cfg.pop('type')
        dataset_cfg = cfg.test_dataloader.dataset
    else:
        if not args.config or not args.checkpoint:
            raise UsageError('give an ensemble config, or --config '
                             'and --checkpoint lists')
        if len(args.config) != len(args.checkpoint):
            raise UsageError(f'{len(args.config)} configs but '
                             f'{len(args.checkpoint)} checkpoints')
        model_cfg = dict(members=[
            dict(config=c, checkpoint=k)
            for c, k in zip(args.config, args.checkpoint)
        ])
        dataset_cfg = load_config(args.config[0]).test_dataloader.dataset
    members = [dict(m) for m in model_cfg['members']]
    if args.device:
        for m in members:
            m['device'] = args.device
    if args.weights is not None:
        if len(args.weights) != len(members):
            raise UsageError(f'{len(args.weights)} weights for '
                             f'{len(members)} members')
        model_cfg['weights'] = args.weights
    model_cfg['members'] = members
    if args.fusion:
        model_cfg['fusion'] = args.fusion
    if args.tta:
        model_cfg['flip'] = True
    try:
        model = EnsembleSegmentor(**model_cfg)
    except ValueError as err:  # members that do not fit together
        raise UsageError(str(err)) from err
    return model, dataset_cfg


def build_dataset(dataset_cfg, split, data_root=None):
    from mmseg.registry import DATASETS
    cfg = dict(dataset_cfg)
    if data_root:
        cfg['data_root'] = data_root
    cfg['data_prefix'] = dict(img_path=f'img_dir/{split}',
                              seg_map_path=f'ann_dir/{split}')
    return DATASETS.build(cfg)


def weight_grid(num_members, step=0.1):
    """All weight vectors on the simplex with the given step (no zeros)."""
    n = int(round(1 / step))
    for combo in itertools.product(range(1, n), repeat=num_members):
        if sum(combo) == n:
            yield tuple(round(c * step, 3) for c in combo)


def iou_table(areas, classes):
    inter, union = areas
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = inter / union
    return {c: float(v) * 100 for c, v in zip(classes, iou)}, \
        float(np.nanmean(iou)) * 100


class Scores:
    """Intersection/union areas per named predictor."""

    def __init__(self, num_classes, ignore_index=255):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.areas = {}

    def add(self, name, pred, gt):
        inter, union, _, _ = IoUMetric.intersect_and_union(
            pred, gt, self.num_classes, self.ignore_index)
        a = self.areas.setdefault(name, [np.zeros(self.num_classes),
                                         np.zeros(self.num_classes)])
        a[0] += inter.numpy()
        a[1] += union.numpy()


def output_names(dataset) -> dict:
    """Image path -> output name: the path below the split's image folder
    without its extension (sub-folders kept), made unique as tools/infer.py
    does, so a/x.jpg and b/x.jpg, or x.jpg and x.png, never share a file.
    """
    img_dir = dataset.data_prefix.get('img_path', '')
    paths = [dataset.get_data_info(i)['img_path']
             for i in range(len(dataset))]
    return dict(unique_names([
        (p, osp.splitext(osp.relpath(p, img_dir))[0]) for p in paths]))


def run_split(model, dataset, candidates, show_dir=None, out_dir=None):
    """One pass: members' probabilities once per image, every candidate
    (name -> (rule, weights)) and every member scored from them."""
    from tqdm import tqdm
    classes = dataset.metainfo['classes']
    palette = dataset.metainfo['palette']
    scores = Scores(len(classes), dataset.ignore_index)
    names = output_names(dataset) if show_dir or out_dir else {}
    for idx in tqdm(range(len(dataset)), desc=f'ensemble on '
                    f'{len(dataset)} images', unit='img'):
        item = dataset[idx]
        sample = item['data_samples']
        probs = model.member_probs([item['inputs']], [sample])[0]
        gt = sample.gt_sem_seg.data[0].to(probs.device).long()
        for m, p in enumerate(probs):
            scores.add(f'member{m}', p.argmax(0), gt)
        labels = {}
        for name, (rule, weights) in candidates.items():
            labels[name] = fuse(probs, rule, weights,
                                model.background_index)[1]
            scores.add(name, labels[name], gt)
        if show_dir or out_dir:  # the first candidate's labels
            label = next(iter(labels.values())).cpu().numpy()
            stem = names[sample.img_path]
            if out_dir:  # as tools/infer.py writes masks
                os.makedirs(out_dir, exist_ok=True)
                save_mask(label.astype(np.uint8),
                          osp.join(out_dir, stem + '.png'), palette)
            if show_dir:
                os.makedirs(show_dir, exist_ok=True)
                img = np.array(Image.open(sample.img_path).convert('RGB'))
                truth = gt.cpu().numpy()
                panel = side_by_side([
                    img, overlay(img, label, palette),
                    overlay(img, truth, palette)
                ])
                panel = add_legend(panel, classes, palette,
                                   'image | ensemble | ground truth')
                atomic_write(osp.join(show_dir, stem + '.png'),
                             lambda p: Image.fromarray(panel).save(
                                 p, format='PNG'))
    return scores


def print_table(scores, names, classes):
    header = '| model | ' + ' | '.join(f'IoU {c}' for c in classes) + \
        ' | mIoU |'
    lines = [header, '|' + '---|' * (len(classes) + 2)]
    result = {}
    for key, label in names:
        per_class, miou = iou_table(scores.areas[key], classes)
        result[label] = dict(per_class, mIoU=miou)
        lines.append(f'| {label} | ' + ' | '.join(
            f'{per_class[c]:.2f}' for c in classes) + f' | {miou:.2f} |')
    print('\n'.join(lines))
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    init_default_scope('mmseg')
    model, dataset_cfg = build_ensemble(args)
    member_names = [osp.splitext(osp.basename(c))[0]
                    for c in model.member_configs]
    results = {}
    rule, weights = model.fusion, model.weights
    if args.search:
        val = build_dataset(dataset_cfg, args.search_split, args.data_root)
        candidates = {}
        for r in FUSION_RULES:
            grids = weight_grid(len(model.members)) if r in WEIGHTED else [
                None]
            for w in grids:
                candidates[f'{r}{list(w) if w else ""}'] = (r, w)
        print(f'searching {len(candidates)} fusion candidates on '
              f'{args.search_split} ({len(val)} images, one pass)')
        scores = run_split(model, val, candidates)
        ranked = sorted(candidates, key=lambda k: -iou_table(
            scores.areas[k], val.metainfo['classes'])[1])
        best = ranked[0]
        rule, weights = candidates[best]
        best_miou = iou_table(scores.areas[best], val.metainfo['classes'])[1]
        print(f'best on {args.search_split}: {best} (mIoU {best_miou:.2f})')
        results['search'] = dict(split=args.search_split, best=best,
                                 ranking=ranked[:10])
    dataset = build_dataset(dataset_cfg, args.split, args.data_root)
    classes = dataset.metainfo['classes']
    name = f'ensemble {rule}' + (
        f' {[round(w, 3) for w in weights]}' if rule in WEIGHTED else '')
    scores = run_split(model, dataset, {name: (rule, weights)},
                       args.show_dir, args.out)
    print(f'\n{args.split} split, {len(dataset)} images:')
    rows = [(f'member{i}', n) for i, n in enumerate(member_names)]
    rows.append((name, name))
    results[args.split] = print_table(scores, rows, classes)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
