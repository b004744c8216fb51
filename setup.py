"""Packaging for dgcl: metadata and requirements come from settings.ini (nbdev 2)."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

requirements = cfg.get("requirements", "").split()
dev_requirements = cfg.get("dev_requirements", "").split()
docs_requirements = cfg.get("docs_requirements", "").split()  # the documentation site: python tools/build_docs.py
console_scripts = cfg.get("console_scripts", "").split()
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable"]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=Path("README.md").read_text(encoding="utf-8") if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    keywords=cfg["keywords"],
    classifiers=[
        "Development Status :: " + statuses[int(cfg["status"])],
        "Intended Audience :: " + cfg["audience"],
        "Natural Language :: " + cfg["language"],
        "Programming Language :: Python :: 3",
    ],
    python_requires=">=" + cfg["min_python"],
    packages=setuptools.find_namespace_packages(include=["dgcl", "dgcl.*"]),
    package_data={"": ["*.txt"]},
    include_package_data=True,
    install_requires=requirements,
    extras_require={"dev": dev_requirements, "docs": docs_requirements},
    entry_points={"console_scripts": console_scripts, "nbdev": ["dgcl=dgcl._modidx:d"]},
    zip_safe=False,
)
