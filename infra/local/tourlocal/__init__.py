"""The local tooling's shared pieces, written once: the ports local processes listen on (`ports`) and one HTTP helper
(`http`). The webhook signer is `infra/local/sign_event.py`, used by the demo and the end-to-end tests alike."""
