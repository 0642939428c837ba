-- AlterTable
ALTER TABLE "dead_letter" ADD COLUMN     "payload" TEXT;

-- AlterTable
ALTER TABLE "revocation_notice" ADD COLUMN     "kind" TEXT NOT NULL DEFAULT 'revocation',
ADD COLUMN     "payload" TEXT,
ALTER COLUMN "credentials" DROP NOT NULL;

