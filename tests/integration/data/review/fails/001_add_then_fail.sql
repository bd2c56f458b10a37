-- Its second statement fails (a division by zero), as a broken migration would on real data.
ALTER TABLE companies ADD COLUMN rating integer;
UPDATE companies SET rating = 1 / (SELECT count(*) - count(*) FROM companies);
