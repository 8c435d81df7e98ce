"""Where the benchmark scripts leave their figures."""
import json
import os
import os.path as osp


def save_report(report: dict, out_dir: str, name: str, device: str) -> str:
    """Write ``report`` as ``OUT_DIR/<name>_<device>.json`` (``cuda:0`` ->
    ``cuda0``), print and return the path."""
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, f'{name}_{device.replace(":", "")}.json')
    with open(path, 'w') as f:
        json.dump(report, f, indent=1)
    print(f'\nsaved {path}')
    return path
