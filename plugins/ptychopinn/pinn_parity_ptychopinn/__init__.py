"""pinn-parity adapters for PtychoPINN (GPL-3.0-or-later): ptychopinn-tf and ptychopinn-torch."""
