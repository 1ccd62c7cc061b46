from pydantic import BaseModel, Field


class DemoSeedRead(BaseModel):
    created: int = Field(description="demo interactions created by this call")
    existing: int = Field(description="demo interactions that were already there")
    items: int = Field(description="demo interactions the seller has (created + existing)")
