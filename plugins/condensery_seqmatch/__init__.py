"""Sequential subset matching (SeqMatch, NeurIPS 2023) over the trajectory and gradient matchers."""
