"""What a person reads: facts and figures the computation returned, put into lines and tables."""
