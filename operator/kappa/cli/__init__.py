"""`kappa` and `kubectl kappa`: run the operator, generate CRDs, and operate resources."""
