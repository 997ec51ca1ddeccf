"""python -m nss_train.data check|info DIR: check or describe a dataset (nss_train.data.datasets.main)."""
import sys

from nss_train.data.datasets import main

sys.exit(main())
