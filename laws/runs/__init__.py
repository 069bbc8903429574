"""The runs a law is fitted to: the table, reading a study's results, collecting a sweep,
designing one."""
