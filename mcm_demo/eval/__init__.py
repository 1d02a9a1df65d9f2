"""The paper's tables on the synthetic world, transfer measurements and timing."""
