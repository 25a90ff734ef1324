"""The sensitive input pipeline: browser form, masked terminal, opt-in env/stdin import."""
