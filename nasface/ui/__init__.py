"""What a person sees: the console displays (stages, trials, full training), the study page, the
validity page, and facts the computation returned put into lines.  Computes nothing itself."""
