"""What purchase and sales orders share: gap-free numbers and refusing an illegal step."""
