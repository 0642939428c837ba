-- AlterTable
ALTER TABLE "dead_letter" ADD COLUMN     "credentials" TEXT;

-- CreateTable
CREATE TABLE "revocation_notice" (
    "id" TEXT NOT NULL,
    "space" TEXT NOT NULL,
    "service" TEXT,
    "credentials" TEXT NOT NULL,
    "writers" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMP(3) NOT NULL,
    "last_error" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "revocation_notice_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "revocation_notice_next_attempt_at_idx" ON "revocation_notice"("next_attempt_at");

-- CreateIndex
CREATE INDEX "notify_registration_expires_at_idx" ON "notify_registration"("expires_at");

-- CreateIndex
CREATE INDEX "dead_letter_created_at_idx" ON "dead_letter"("created_at");

