from configparser import ConfigParser
import setuptools, shlex

# nbdev 2 convention: every setting lives in settings.ini
config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

expected = 'version description keywords author author_email'.split()
missing = [o for o in expected if o not in cfg]
if missing: raise SystemExit(f'settings.ini is missing: {missing}')

setup_cfg = {o: cfg[o] for o in 'version description keywords author author_email'.split()}
licenses = {'mit': ('MIT License', 'OSI Approved :: MIT License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable',
            '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12'.split()

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
# The paper scale's LAION-CLAP adapter runs laion_clap's model code, which needs `paper_requirements`. laion-clap
# itself declares numpy<2 (it runs with numpy 2), so pip cannot install it with its dependencies here:
# `python -m pip install --no-deps laion-clap==1.1.7` beside this extra (as .ci/run does).
paper_requirements = shlex.split(cfg.get('paper_requirements', ''))
min_python = cfg['min_python']
lic = licenses[cfg['license'].lower()]
console_scripts = [s for s in cfg.get('console_scripts', '').split() if s]

setuptools.setup(
    name=cfg['lib_name'],
    license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title(),
                 'License :: ' + lic[1]] +
                ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['ttm_pref', 'ttm_pref.*']),
    include_package_data=True,
    package_data={'ttm_pref': ['shipped/*.safetensors', 'shipped/*.json']},  # the measuring instruments (foundations/instruments)
    install_requires=requirements,
    extras_require={'dev': dev_requirements + paper_requirements, 'paper': paper_requirements},
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': console_scripts, 'nbdev': [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d']},
    **setup_cfg)
