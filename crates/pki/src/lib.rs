//! The cluster PKI: CA, certificates, kubeconfigs and tokens.
