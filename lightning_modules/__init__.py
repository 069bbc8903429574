"""The model side: decoder shapes, attention kernels, the decoder, Step Law, the
LightningModule and the BPC validation callback."""
