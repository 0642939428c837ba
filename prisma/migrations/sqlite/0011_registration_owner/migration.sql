-- AlterTable
ALTER TABLE "notify_registration" ADD COLUMN "registered_by" TEXT;

-- CreateIndex
CREATE INDEX "notify_registration_registered_by_idx" ON "notify_registration"("registered_by");

