-- AlterTable
ALTER TABLE "api_token" ADD COLUMN     "parent_id" TEXT;

-- CreateIndex
CREATE INDEX "api_token_parent_id_idx" ON "api_token"("parent_id");

