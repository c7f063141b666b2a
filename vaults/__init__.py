"""Key storage and signing: software, file, PKCS#11, AWS KMS and GCP KMS vaults."""
