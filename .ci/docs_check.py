"Everything nbdev_docs does before it calls quarto (which these machines cannot install), and checks on it."
from pathlib import Path
import yaml
from nbdev.config import get_config
from nbdev.quarto import refresh_quarto_yml
from nbdev.serve import proc_nbs
import nbdev.doclinks

def entries(items):
    for item in items:
        if isinstance(item, str): yield item
        else: yield from entries(item.get('contents', []))


def main():
    cfg = get_config()
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    cache = proc_nbs(cfg.nbs_path, n_workers=2, force=True)

    sidebar = yaml.safe_load((cfg.nbs_path/'sidebar.yml').read_text())['website']['sidebar']['contents']
    listed = set(entries(sidebar))
    notebooks = {str(p.relative_to(cfg.nbs_path)) for p in cfg.nbs_path.rglob('*.ipynb')
                 if not any(part.startswith(('.', '_')) for part in p.relative_to(cfg.nbs_path).parts)}
    assert listed == notebooks, f'sidebar.yml and the notebooks differ: {sorted(listed ^ notebooks)}'
    missing = [nb for nb in notebooks if not (cache/nb).exists()]
    assert not missing, f'not processed: {missing}'
    assert (cache/'_quarto.yml').exists() and (cache/'sidebar.yml').exists()
    print(f'{len(notebooks)} notebooks processed into {cache.name}/; the sidebar lists them all; quarto renders from here')

if __name__ == '__main__': main()  # proc_nbs spawns workers that re-import this file
