-- CreateTable
CREATE TABLE "delivery_tally" (
    "space" TEXT NOT NULL,
    "service" TEXT NOT NULL,
    "day" TEXT NOT NULL,
    "delivered" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "delivery_tally_pkey" PRIMARY KEY ("space","service","day")
);

-- CreateIndex
CREATE INDEX "delivery_tally_day_idx" ON "delivery_tally"("day");

