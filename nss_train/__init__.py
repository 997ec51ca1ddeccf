"""nss_train: render data, train, evaluate and export the neural supersampling network."""
__version__ = "0.1.0"
