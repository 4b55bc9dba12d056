"""trainkit's own Lightning callbacks: what Lightning does not already provide."""
