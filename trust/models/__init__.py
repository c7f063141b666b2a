"""Pure data of identities and credentials: frozen dataclasses with byte-exact encode()/decode()."""
